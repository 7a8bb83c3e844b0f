"""KServe's flags, constants and enums, mapped onto modelport's settings (no second implementation).

``parser`` has KServe 0.16's ``kserve.model_server.parser`` flags and defaults, so a script can write
``argparse.ArgumentParser(parents=[model_server.parser])``. :func:`settings_from_argv` is what
``ModelServer().start()`` uses: defaults < ``MODELPORT_*`` env < KServe flags on ``sys.argv`` <
arguments given to the ``ModelServer`` constructor (as in KServe, where they default to the flags).
Unknown flags are ignored, as KServe's ``parse_known_args`` does.
"""

from __future__ import annotations

import argparse
import os
import uuid
from typing import Any, Mapping, Sequence

from ...model import PredictorProtocol
from ...settings import ServerSettings, load_server_settings


DEFAULT_HTTP_PORT = 8080
DEFAULT_GRPC_PORT = 8081
MAX_GRPC_MESSAGE_LENGTH = 8388608
INFERENCE_CONTENT_LENGTH_HEADER = "inference-header-content-length"
V1_ROUTE_PREFIX = "/v1"
V2_ROUTE_PREFIX = "/v2"
KSERVE_LOGLEVEL = os.environ.get("KSERVE_LOGLEVEL", "INFO").upper()
MODEL_SERVER_NAME = "modelport"


def strtobool(value: str) -> bool:
    text = str(value).lower()
    if text in ("y", "yes", "t", "true", "on", "1"):
        return True
    if text in ("n", "no", "f", "false", "off", "0"):
        return False
    raise ValueError(f"invalid truth value {value!r}")


def generate_uuid() -> str:
    return str(uuid.uuid4())


def cpu_count() -> int:
    """CPUs this process may use (its affinity), as KServe sizes its pools."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def is_v1(protocol: Any) -> bool:
    return getattr(protocol, "value", protocol).lower() == PredictorProtocol.REST_V1.value


def is_v2(protocol: Any) -> bool:
    return getattr(protocol, "value", protocol).lower() == PredictorProtocol.REST_V2.value


def to_headers(context: Any) -> dict[str, str]:
    """A gRPC servicer context's invocation metadata as a dict of headers."""
    metadata = list(context.invocation_metadata())
    if hasattr(context, "trailing_metadata"):
        metadata += list(context.trailing_metadata() or ())
    return {m.key: m.value for m in metadata}


# flag -> (type, KServe default, modelport server setting or None when it configures something else)
FLAGS: dict[str, tuple[Any, Any, str | None]] = {
    "http_port": (int, DEFAULT_HTTP_PORT, "http_port"),
    "grpc_port": (int, DEFAULT_GRPC_PORT, "grpc_port"),
    "workers": (int, 1, "workers"),
    "max_threads": (int, 4, "inference_threads"),
    "max_asyncio_workers": (int, None, "max_asyncio_workers"),
    "enable_grpc": (strtobool, True, "enable_grpc"),
    "enable_docs_url": (strtobool, False, "enable_docs"),
    "enable_latency_logging": (strtobool, True, "enable_latency_logging"),
    "configure_logging": (strtobool, True, None),
    "log_config_file": (str, None, None),
    "access_log_format": (str, None, "access_log_format"),
    "model_name": (str, "model", None),  # read by the user's script, as in KServe
    "predictor_host": (str, None, "predictor_host"),
    "protocol": (str, "v1", "predictor_protocol"),  # KServe's deprecated spelling
    "predictor_protocol": (str, "v1", "predictor_protocol"),
    "predictor_use_ssl": (strtobool, False, "predictor_use_ssl"),
    "predictor_request_timeout_seconds": (int, 600, "predictor_request_timeout_seconds"),
    "predictor_request_retries": (int, 0, "predictor_request_retries"),
    "grpc_max_send_message_length": (int, MAX_GRPC_MESSAGE_LENGTH, None),
    "grpc_max_receive_message_length": (int, MAX_GRPC_MESSAGE_LENGTH, "grpc_max_message_size"),
}


def check_models(models: Any) -> None:
    """What KServe's ``ModelServer.start`` refuses: no collection at all, or an item that is no model."""
    from ...model import Model

    if models is None or isinstance(models, (str, bytes, Model)) or not hasattr(models, "__iter__"):
        raise RuntimeError("Unknown model collection type")
    if not isinstance(models, (list, tuple)):
        return  # a generator: checked as it is consumed by the server
    for model in models:
        if not isinstance(model, Model):
            raise RuntimeError(f"Model type should be 'Model', got {type(model).__name__}")


def build_parser(defaults: bool = True) -> argparse.ArgumentParser:
    """KServe's flags; with ``defaults=False`` a flag not on the command line is absent from the result."""
    parser = argparse.ArgumentParser(add_help=False, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for flag, (kind, default, _) in FLAGS.items():
        extra: dict[str, Any] = {"choices": [p.value for p in PredictorProtocol]} if "protocol" in flag else {}
        parser.add_argument(f"--{flag}", type=kind, default=default if defaults else argparse.SUPPRESS, **extra)
    parser.add_argument(
        "--enable_predictor_health_check", action="store_true", default=False if defaults else argparse.SUPPRESS
    )
    return parser


parser = build_parser()


def settings_from_argv(
    argv: Sequence[str], explicit: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> tuple[ServerSettings, argparse.Namespace]:
    """Server settings for a script started as ``python model.py --http_port ...``, and the flags given."""
    given, _ = build_parser(defaults=False).parse_known_args(list(argv))
    overrides: dict[str, Any] = {}
    for flag, value in vars(given).items():
        if flag == "enable_predictor_health_check":
            overrides["predictor_health_check"] = value
        elif FLAGS[flag][2] is not None and value is not None:
            overrides[FLAGS[flag][2]] = value
    overrides.update(explicit)
    return load_server_settings(None, env=os.environ if env is None else env, overrides=overrides), given


__all__ = [
    "DEFAULT_GRPC_PORT",
    "DEFAULT_HTTP_PORT",
    "FLAGS",
    "INFERENCE_CONTENT_LENGTH_HEADER",
    "MAX_GRPC_MESSAGE_LENGTH",
    "PredictorProtocol",
    "build_parser",
    "check_models",
    "cpu_count",
    "generate_uuid",
    "is_v1",
    "is_v2",
    "to_headers",
    "parser",
    "settings_from_argv",
    "strtobool",
]

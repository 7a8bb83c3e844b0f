"""``modelport serve|infer``: argv, environment, logging and signals live here and only here."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Sequence

EXAMPLES = Path(__file__).parent / "examples" / "models"


def _flag(parser: argparse.ArgumentParser, name: str, **kwargs: Any) -> None:
    """A flag that also answers to KServe's underscore spelling (--http_port for --http-port)."""
    names = [f"--{name}"]
    if "-" in name:
        names.append(f"--{name.replace('-', '_')}")
    parser.add_argument(*names, dest=name.replace("-", "_"), default=None, **kwargs)


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = argparse.ArgumentParser(prog="modelport", description="Serve Python models over the Open Inference Protocol and KServe V1.")
    parser.add_argument("--version", action="version", version=f"modelport {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the models in a folder (or the bundled examples)")
    serve.add_argument("models", nargs="?", help="folder of model-settings.json files or model files, or one model file; "
                       "default: $MODELPORT_MODEL_REPOSITORY, $MLSERVER_MODELS_DIR, else the bundled examples")
    _flag(serve, "settings", help="server settings file (default: settings.json in the models folder)")
    _flag(serve, "host", help="address to listen on (default 0.0.0.0)")
    _flag(serve, "http-port", type=int, help="REST port (default 8080)")
    _flag(serve, "grpc-port", type=int, help="gRPC port (default 8081)")
    _flag(serve, "enable-grpc", type=_bool, help="serve gRPC too (default true)")
    _flag(serve, "workers", type=int, help="front-end processes sharing the ports (default 1)")
    _flag(serve, "inference-threads", type=int, help="threads running sync model hooks (default 4)")
    _flag(serve, "loop-budget-ms", type=float, help="sync hooks that keep finishing within this run on the event loop (default 1; 0: never)")
    _flag(serve, "max-request-size", type=int, help="largest request body in bytes; larger gets 413")
    _flag(serve, "grpc-max-message-size", type=int, help="largest gRPC message in bytes")
    _flag(serve, "grace-period", type=float, help="seconds in-flight requests get after SIGTERM (default 30)")
    _flag(serve, "max-header-size", type=int, help="largest HTTP request head in bytes; larger gets 431 (default 65536)")
    _flag(serve, "max-header-count", type=int, help="most HTTP header fields; more gets 431 (default 128)")
    _flag(serve, "header-timeout", type=float, help="seconds to send a request head; then 408 (default 10)")
    _flag(serve, "body-timeout", type=float, help="seconds to send a request body once its head is in; then 408 (default 30)")
    _flag(serve, "keep-alive-timeout", type=float, help="seconds an idle HTTP connection stays open (default 30)")
    _flag(serve, "max-connections", type=int, help="most HTTP connections per process; more get 503 (default: from the open-file limit)")
    _flag(serve, "drain-delay", type=float, help="seconds to keep serving, not ready, after SIGTERM (default 0)")
    _flag(serve, "decode-offload-size", type=int, help="V2 JSON bodies this large (bytes) decode in a helper process (default 8 MiB; 0: never)")
    _flag(serve, "gc-freeze", type=_bool, help="after the models load, keep what exists out of the garbage collector's full passes (default true)")
    _flag(serve, "malloc-cache-size", type=int, help="freed memory (bytes) malloc keeps for reuse: large tensors skip page faults (default 64 MiB; 0: glibc's defaults)")
    _flag(serve, "log-level", help="debug, info, warning or error (default info)")
    _flag(serve, "log-format", choices=["text", "json"], help="text or json logs (default text)")
    _flag(serve, "access-log", type=_bool, help="log every request: method, path, status, bytes, duration, client, request id (default false)")
    _flag(serve, "access-log-sample", type=float, help="fraction of requests the access log writes, 0..1 (default 1)")
    _flag(serve, "enable-statistics", type=_bool, help="Triton statistics and /v2/models/{m}/health (default true)")
    _flag(serve, "enable-tracing", type=_bool, help="OpenTelemetry spans, exported per OTEL_* (extra 'tracing'; default false)")
    _flag(serve, "enable-docs", type=_bool, help="serve /docs and /openapi.json (default true)")
    _flag(serve, "enable-metrics", type=_bool, help="serve /metrics (default true)")
    _flag(serve, "enable-ui", type=_bool, help="serve the web console at /ui (default true)")
    _flag(serve, "predictor-host", help="transformer mode: host:port of the predictor")
    _flag(serve, "predictor-protocol", choices=["v1", "v2", "grpc-v2"], help="protocol to the predictor")
    _flag(serve, "predictor-use-ssl", type=_bool, help="use TLS to the predictor")
    _flag(serve, "predictor-request-timeout-seconds", type=float, help="predictor request timeout")
    _flag(serve, "predictor-request-retries", type=int, help="predictor request retries")
    _flag(serve, "predictor-health-check", type=_bool, help="readiness includes the predictor's")
    _flag(serve, "max-asyncio-workers", type=int, help="threads of the event loop's default executor (KServe)")
    _flag(serve, "enable-latency-logging", type=_bool, help="log each hook call's latency (default false)")
    _flag(serve, "access-log-format", help="accepted for KServe; the access log keeps its format")
    # Routing: repository poll mode.
    _flag(serve, "model-control-mode", choices=["none", "poll"], help="poll: reload models whose files change (default none)")
    _flag(serve, "poll-interval", type=float, help="seconds between repository scans in poll mode (default 5)")
    # KServe's names for settings that have another name here.
    serve.add_argument("--max_threads", dest="inference_threads", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument("--enable_docs_url", dest="enable_docs", type=_bool, default=None, help=argparse.SUPPRESS)
    # KServe's built-in servers (sklearnserver --model_dir /mnt/models --model_name iris).
    _flag(serve, "model-dir", help="a folder holding one bare model file (KServe layout), served as one model")
    _flag(serve, "model-name", help="the name to serve a single model file or --model-dir under")
    serve.add_argument("--ray", action="store_true", help="run the models as a Ray Serve application (extra: ray)")
    serve.add_argument("--ray-address", "--address", dest="ray_address", help="Ray cluster to join (default: start one here)")
    serve.add_argument("--ray-options", dest="ray_options", type=_json_object,
                       help='Ray Serve deployment options as JSON, e.g. \'{"num_replicas": 2, "max_ongoing_requests": 16}\'')
    serve.add_argument("--ray-proxy-location", dest="ray_proxy_location", choices=("EveryNode", "HeadOnly", "Disabled"),
                       help="where Ray runs its HTTP/gRPC proxies (default: every node with a replica)")
    serve.add_argument("--ray-num-cpus", dest="ray_num_cpus", type=float, help="CPUs of the Ray cluster started here")
    _flag(serve, "load-models-at-startup", type=_bool, help="false: start with no models; load them through the repository API")
    _flag(serve, "strict-settings", type=_bool, help="unknown keys in settings files are errors, not warnings")
    # Production controls (modelport.controls); keys themselves belong in a file or the environment, not argv.
    _flag(serve, "api-keys-path", help="JSON file of API keys (see README, Production)")
    _flag(serve, "repository-api", choices=["on", "admin", "off"], help="the repository API: on, admin keys only, or off")
    _flag(serve, "rate-limit", help="per-client rate limit, e.g. 100/minute")
    _flag(serve, "rate-limit-model", help="per-model rate limit, e.g. 1000/hour")
    _flag(serve, "cors-origins", help="comma-separated origins allowed by CORS ('*' for any)")
    _flag(serve, "allowed-hosts", help="without api_keys: host names a browser's admin request may name besides loopback (comma-separated; *: any)")
    _flag(serve, "system-shared-memory", choices=["off", "local", "on"],
          help="Triton's system shared-memory extension: off (default), local (clients on this host only) or on")
    _flag(serve, "shared-memory-max-bytes", type=int, help="most bytes the shared-memory regions map together (default 1 GiB)")

    infer = sub.add_parser("infer", help="send one inference request and print the response as JSON")
    infer.add_argument("model", help="model name")
    where = infer.add_mutually_exclusive_group()
    where.add_argument("--url", default="http://127.0.0.1:8080", help="REST server (default http://127.0.0.1:8080)")
    where.add_argument("--grpc", metavar="HOST:PORT", help="send over gRPC (Open Inference Protocol) instead")
    infer.add_argument("--protocol", choices=["v1", "v2"], default="v2", help="REST protocol (default v2)")
    body = infer.add_mutually_exclusive_group(required=True)
    body.add_argument("--json", metavar="FILE", help="request body as JSON (V1 or V2 to match --protocol); - reads stdin")
    body.add_argument("--npy", metavar="FILE", help="a numpy .npy file, sent as one V2 input (V1: as instances)")
    infer.add_argument("--input-name", default="input-0", help="the input's name for --npy (default input-0)")
    infer.add_argument("--output-binary", action="store_true", help="REST V2: have outputs sent as binary tensor data")
    infer.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the answer (default 60)")
    infer.add_argument("--stream", action="store_true",
                       help="stream the answer (REST V2 /infer_stream, V1 :predict as SSE, gRPC ModelStreamInfer): one JSON line per response")
    infer.add_argument("--api-key", default=None, help="API key sent as 'Authorization: Bearer' (default: $MODELPORT_API_KEY)")

    from .bench.cli import add_parser as add_bench_parser  # argparse only; the load code loads when run

    add_bench_parser(sub)

    from .routing.commands import add_parsers as add_routing_parsers

    add_routing_parsers(sub)
    from .deploy.commands import add_parsers as add_deploy_parsers

    add_deploy_parsers(sub)
    return parser


def configure_logging(level: str, fmt: str, config_file: str | None = None) -> None:
    if config_file:  # KServe's --log_config_file: a logging dictConfig as JSON (or YAML with PyYAML)
        _dict_config(config_file)
        return
    from .observability.logs import JsonFormatter, TextFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own start-up lines repeat ours; keep its warnings and errors.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def _dict_config(path: str) -> None:
    import logging.config

    text = Path(path).read_text()
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError as exc:
            raise ImportError(f"Reading {path} needs PyYAML (pip install pyyaml), or give a .json file") from exc
        config = yaml.safe_load(text)
    else:
        config = json.loads(text)
    logging.config.dictConfig(config)


def serve(args: argparse.Namespace) -> int:
    from .errors import ModelportError
    from .settings import load_server_settings

    if args.models and args.model_dir:
        configure_logging("info", "text")
        logging.getLogger("modelport").error("Give either a models folder or --model_dir, not both")
        return 2
    # The folder: the argument, else MODELPORT_MODEL_REPOSITORY / MLSERVER_MODELS_DIR, else the examples.
    from_env = os.environ.get("MODELPORT_MODEL_REPOSITORY") or os.environ.get("MLSERVER_MODELS_DIR")
    target = Path(args.models or args.model_dir or from_env or EXAMPLES)
    own = ("command", "models", "settings", "model_dir", "model_name", "ray", "ray_address", "ray_options",
           "ray_proxy_location", "ray_num_cpus")
    overrides = {k: v for k, v in vars(args).items() if k not in own and v is not None}
    # One model: a file, a --model_dir without model-settings.json (KServe), or any folder given --model_name.
    single_file = target.is_file() or (
        target.is_dir() and (args.model_dir is not None or args.model_name is not None) and not _has_model_settings(target)
    )
    if single_file:
        overrides.setdefault("model_repository", None)
    else:
        overrides["model_repository"] = str(target)
    settings_file = args.settings or (None if single_file else target / "settings.json")
    configure_logging("info", "text")  # until the settings say otherwise: their own warnings show formatted
    try:
        if args.settings and not Path(args.settings).is_file():
            raise ModelportError(f"Settings file {args.settings} does not exist")
        settings = load_server_settings(settings_file, overrides=overrides)
        if not target.exists():
            if settings.load_models_at_startup:
                raise ModelportError(f"{target} does not exist; give a folder of model-settings.json files or a model file")
            target.mkdir(parents=True, exist_ok=True)  # ModelMesh writes models here later
    except (ModelportError, OSError) as exc:
        logging.getLogger("modelport").error("%s", exc)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    log = logging.getLogger("modelport")
    try:
        from .serving.server import ModelServer

        models = []
        if single_file:
            name = args.model_name or ("model" if args.model_dir and not target.is_file() else None)
            models = _single_file_models(target, name)
        elif args.model_name:
            raise ModelportError("--model_name names a single model file or --model_dir; this folder holds model-settings.json files")
        if args.ray:
            from .ray import run

            log.info("Serving %s on Ray Serve", target)
            run(None if single_file else str(target), models, settings, address=args.ray_address,
                ray_options=args.ray_options, proxy_location=args.ray_proxy_location, num_cpus=args.ray_num_cpus)
            return 0
        server = ModelServer(settings=settings)
        log.info("Serving %s", target)
        server.start(models)
    except ModelportError as exc:
        log.error("%s", exc)
        return 1
    except ImportError as exc:
        log.error("%s", exc)
        return 1
    return 0


def _single_file_models(path: Path, name: str | None = None) -> list:
    from .repository.entries import build_model
    from .runtimes import settings_for_file

    return [build_model(settings_for_file(path, name))]


def _has_model_settings(folder: Path) -> bool:
    return any(folder.rglob("model-settings.json"))


class _UsageError(Exception):
    pass


def infer(args: argparse.Namespace) -> int:
    """``modelport infer``: one request, the answer as JSON on stdout; a failure is one line on stderr."""
    from .client import ClientError
    from .errors import InvalidInput, ModelportError

    try:
        result = _send(args)
        if args.stream:  # one line per response, as each arrives
            for item in result:
                sys.stdout.buffer.write(_dumps_result(item) + b"\n")
                sys.stdout.flush()
            return 0
    except ClientError as exc:  # the server's answer, or no answer
        print(f"modelport infer: {exc}", file=sys.stderr)
        return 1
    except (_UsageError, InvalidInput) as exc:  # the input given here
        print(f"modelport infer: {exc}", file=sys.stderr)
        return 2
    except ModelportError as exc:
        print(f"modelport infer: {exc}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(_dumps_result(result) + b"\n")
    sys.stdout.flush()
    return 0


def _send(args: argparse.Namespace) -> Any:
    import numpy as np

    from .client import GRPCClient, RESTClient, RESTConfig
    from .types import InferInput, InferRequest, from_np_dtype
    from .wire import v2_json

    if args.grpc and args.protocol == "v1":
        raise _UsageError("gRPC speaks the Open Inference Protocol (V2) only; drop --protocol v1")
    if args.output_binary and (args.grpc or args.protocol == "v1"):
        raise _UsageError("--output-binary applies to REST V2 only")
    if args.json is not None:
        try:
            raw = sys.stdin.buffer.read() if args.json == "-" else Path(args.json).read_bytes()
        except OSError as exc:
            raise _UsageError(f"cannot read {args.json}: {exc.strerror or exc}") from None
        data: Any = v2_json.loads(raw, f"{'stdin' if args.json == '-' else args.json}")
        if not isinstance(data, dict):
            raise _UsageError("the JSON body must be an object")
        if args.grpc or args.protocol == "v2":
            if "inputs" not in data:
                raise _UsageError('a V2 body needs "inputs" (for {"instances": ...} use --protocol v1)')
            if args.grpc:
                data = v2_json.request_from_dict(data, args.model)
            elif args.output_binary:
                data.setdefault("parameters", {})["binary_data_output"] = True
    else:
        try:
            array = np.load(args.npy, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise _UsageError(f"cannot read {args.npy} as a .npy array: {exc}") from None
        if args.protocol == "v1" and not args.grpc:
            data = {"instances": array.tolist()}
        else:
            datatype = from_np_dtype(array.dtype)
            data = InferRequest(args.model, [InferInput(args.input_name, list(array.shape), datatype, array)])
    api_key = args.api_key or os.environ.get("MODELPORT_API_KEY") or None
    if args.stream:
        return _stream(args, data)
    if args.grpc:
        with GRPCClient(args.grpc, timeout=args.timeout, api_key=api_key) as client:
            return client.infer(data)
    config = RESTConfig(protocol=args.protocol, timeout=args.timeout, binary_outputs=args.output_binary, api_key=api_key)
    with RESTClient(config) as client:
        return client.infer(args.url, data, args.model)


def _stream(args: argparse.Namespace, data: Any) -> Any:
    from .client import GRPCClient, RESTClient, RESTConfig

    if args.grpc:
        with GRPCClient(args.grpc, timeout=args.timeout) as client:
            yield from client.infer_stream(data)
        return
    with RESTClient(RESTConfig(protocol=args.protocol, timeout=args.timeout)) as client:
        yield from client.infer_stream(args.url, data, args.model)


def _dumps_result(result: Any) -> bytes:
    """A response as the JSON a server would send (flat data, shortest float repr); V1 dicts as they are."""
    import numpy as np

    from .types import InferResponse
    from .wire import v2_json

    if not isinstance(result, InferResponse):
        return v2_json.dumps(result)
    doc: dict[str, Any] = {"model_name": result.model_name}
    if result.model_version:
        doc["model_version"] = result.model_version
    if result.id is not None:
        doc["id"] = result.id
    if result.parameters:
        doc["parameters"] = result.parameters
    outputs = []
    for out in result.outputs:
        array = out.as_numpy()
        if out.datatype == "BYTES":
            data: Any = [v.decode("utf-8", "backslashreplace") if isinstance(v, bytes) else v for v in array.ravel()]
        elif out.datatype == "FP16":
            data = array.ravel().tolist()
        else:
            data = np.ascontiguousarray(array).ravel()
        item = {"name": out.name, "datatype": out.datatype, "shape": list(array.shape), "data": data}
        params = {k: v for k, v in out.parameters.items() if k not in ("binary_data", "binary_data_size")}
        if params:
            item["parameters"] = params
        outputs.append(item)
    doc["outputs"] = outputs
    return v2_json.dumps(doc)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "infer":
        return infer(args)
    if args.command in ("traffic", "promote", "rollback"):
        from .routing import commands as routing_commands

        return routing_commands.run(args)
    if args.command == "bench":
        from .bench.cli import main as bench_main

        return bench_main(args)
    if args.command in ("build", "k8s"):
        from .deploy import commands

        return getattr(commands, args.command)(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())

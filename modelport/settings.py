"""Server settings and model settings, typed and loaded once.

Server settings come from one loader with one precedence, lowest first:
defaults < ``settings.json`` (in the model folder, or a path) < ``MLSERVER_*`` environment variables
< ``MODELPORT_*`` environment variables < explicit overrides (command-line flags). Model settings are
MLServer's ``model-settings.json``. Keys this server does not know are a warning naming them (MLServer's
own keys say what to do instead), or an error with ``strict_settings``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .compat.mlserver import config_keys as mls
from .errors import InvalidInput

ENV_PREFIX = "MODELPORT_"
logger = logging.getLogger("modelport")


class SettingsError(InvalidInput):
    """A settings file, variable or flag that cannot be used as it is."""


@dataclass
class ServerSettings:
    host: str = "0.0.0.0"
    http_port: int = 8080
    grpc_port: int = 8081
    enable_grpc: bool = True
    workers: int = 1
    # Bodies larger than this are refused with 413 before they are read.
    max_request_size: int = 64 * 1024 * 1024
    grpc_max_message_size: int = 64 * 1024 * 1024
    # Threads that run sync model hooks off the event loop.
    inference_threads: int = 4
    # A sync hook chain that has finished within this many milliseconds many times in a row runs on the
    # event loop, skipping the thread hand-off (one slower call sends it back); 0: always a thread.
    loop_budget_ms: float = 1.0
    # Seconds in-flight requests get to finish after SIGTERM before they are cancelled.
    grace_period: float = 30.0
    # Default deadline of an inference request in seconds (0: none); a request may ask for less
    # with the x-request-timeout header (seconds) or the V2 "timeout" parameter (microseconds).
    request_timeout: float = 0.0
    # Defaults for models whose settings leave these at 0 (see ModelSettings).
    max_batch_size: int = 0
    max_batch_time: float = 0.0
    max_queue_size: int = 0
    log_level: str = "info"
    log_format: str = "text"  # "text" or "json"
    access_log: bool = False
    enable_docs: bool = True
    enable_metrics: bool = True
    model_repository: str | None = None
    server_name: str = "modelport"
    # Transformer mode: where the predictor this server's models call lives.
    predictor_host: str | None = None
    predictor_protocol: str = "v1"
    predictor_use_ssl: bool = False
    predictor_request_timeout_seconds: float = 600.0
    predictor_request_retries: int = 0
    predictor_health_check: bool = False
    # KServe compatibility (ModelServer arguments and flags of kserve 0.16).
    # Threads of the event loop's default executor (0: Python's default).
    max_asyncio_workers: int = 0
    # A log line (logger modelport.trace) per hook call with its latency.
    enable_latency_logging: bool = False
    # Accepted for KServe scripts; access lines use modelport's format (see access_log).
    access_log_format: str | None = None
    # Operator experience: the web console at /ui (read-only pages, and buttons that call the repository API).
    enable_ui: bool = True
    # -- MLServer compatibility: its settings.json keys and MLSERVER_* variables ------------------
    # Unknown keys in settings files are a warning naming them; true makes them an error.
    strict_settings: bool = False
    # False: start with no models; they are loaded later through the repository API (ModelMesh).
    load_models_at_startup: bool = True
    debug: bool = False  # true: log_level "debug"
    # Default worker processes per model (a model's own parallel_workers wins; 0: in-process).
    parallel_workers: int = 0
    # Accepted for MLServer's settings; metrics are served on the HTTP port at /metrics.
    metrics_port: int = 0
    # A model served when the folder holds no model settings (MLSERVER_MODEL_NAME, _IMPLEMENTATION, ...).
    default_model_name: str | None = None
    default_model_implementation: str | None = None
    default_model_uri: str | None = None
    default_model_version: str | None = None
    # -- Production controls (modelport.controls); each is off until set --
    # API keys: a list of {"key" or "sha256", "name", "scopes": ["infer", "admin"], "models": [...]},
    # or its JSON text, or "key1,key2" (bare keys with every scope); and/or a JSON file of the same list.
    api_keys: Any = None
    api_keys_path: str | None = None
    auth_health: bool = False  # health probes need a key too (off: Kubernetes probes keep working)
    auth_metrics: bool = False  # /metrics needs a key too
    repository_api: str = "on"  # on (admin key when keys are set) | admin (admin key, always) | off
    rate_limit: str | None = None  # per client, e.g. "100/minute" or "10/second;burst=20"
    rate_limit_model: str | None = None  # per model, for models that set no rate_limit of their own
    rate_limit_header: str | None = None  # names a client that sends no key (else its address does)
    rate_limit_clients: int = 10000  # most clients tracked at once (idle ones dropped; full: new clients 429)
    # Addresses or CIDRs of the proxies that set rate_limit_header (list or comma-separated); the header
    # of any other connection is ignored. None (the default): the header is never trusted.
    trusted_proxies: Any = None
    # Model archives (.zip, .tar.gz, ... named by a model's uri): most bytes and members one may unpack
    # to; a bigger one is refused before anything is written (a decompression bomb).
    max_archive_size: int = 8 * 1024**3
    max_archive_files: int = 50_000
    cors_origins: Any = None  # list or comma-separated; "*" for any
    # Host names a browser's admin request may be sent to besides loopback and the address the server
    # listens on (DNS rebinding; modelport/controls/origin.py); list or comma-separated; "*": any.
    # Only without api_keys: with keys an admin door needs an admin key anyway.
    allowed_hosts: Any = None
    cors_methods: Any = None
    cors_headers: Any = None
    cors_max_age: int = 600
    cors_allow_credentials: bool = False
    # Routing (rollouts): "poll" watches model_repository every poll_interval seconds and loads,
    # reloads or unloads models whose files changed (Triton's --model-control-mode=poll); "none" does not.
    model_control_mode: str = "none"
    poll_interval: float = 5.0
    # Most shadow (mirrored) requests running at once; more are skipped and counted.
    max_shadow_requests: int = 64
    # -- connections and shutdown (issue 9; see modelport/transports/rest/http_connection.py) --
    # Largest HTTP request head (request line + headers) in bytes, and most header fields: more gets 431.
    max_header_size: int = 64 * 1024
    max_header_count: int = 128
    # Seconds a client has to send a whole request head once it starts one; then 408 and close.
    header_timeout: float = 10.0
    # Seconds a client has, once the head is in, to send the whole request body; then 408 and close.
    body_timeout: float = 30.0
    # Seconds an HTTP connection may sit idle (before its first request too) before it is closed.
    keep_alive_timeout: float = 30.0
    # Most open HTTP connections per process (0: 90% of the open-file limit); more get 503 and close.
    max_connections: int = 0
    # Seconds to keep serving after SIGTERM, not ready, so a load balancer stops sending first.
    drain_delay: float = 0.0
    # V2 JSON bodies of at least this many bytes are decoded in a helper process so the event loop
    # keeps answering (0: always on the loop).
    decode_offload_size: int = 8 * 1024 * 1024
    # -- large tensors (issue 15; modelport/serving/malloc_tuning.py) --
    # Freed memory (bytes) glibc's malloc keeps mapped for reuse instead of returning it to the OS after
    # each request; without it large tensors page-fault their buffers in on every request. 0: glibc's defaults.
    malloc_cache_size: int = 64 * 1024 * 1024
    # Once the models have loaded, freeze what exists (gc.freeze) so the collector's full passes walk only
    # what requests make, not the frameworks and models (modelport/serving/heap.py). With residency: once, at
    # start-up. Not with polling.
    gc_freeze: bool = True
    # -- observability (modelport/observability) --
    # Triton's statistics extension and the per-model health view.
    enable_statistics: bool = True
    # The health view judges the last health_window seconds: above health_degraded_error_rate errors
    # (or a p99 above health_degraded_p99_ms, when set) is "degraded"; from health_failed_error_rate "failed".
    health_window: float = 60.0
    health_degraded_error_rate: float = 0.05
    health_failed_error_rate: float = 0.5
    health_degraded_p99_ms: float = 0.0
    health_min_requests: int = 1
    # Fraction of requests the access log (access_log) writes, 0..1.
    access_log_sample: float = 1.0
    # OpenTelemetry spans per request and stage (extra "tracing"); exporter from the OTEL_* variables.
    enable_tracing: bool = False
    # -- more models than memory (issue 23; modelport/repository/residency.py); off until a limit is set --
    # With either limit, models are registered without loading and load on their first request; the
    # least recently used idle, unpinned ones are unloaded to make room. Per worker process.
    max_loaded_models: int = 0  # most models loaded at once (0: no limit)
    memory_budget: Any = None  # bytes, or a size such as "2GiB" or "512MB", the loaded models may hold
    max_concurrent_loads: int = 4  # on-demand loads running at once; more wait their turn
    load_retry_after: float = 5.0  # seconds before a model whose on-demand load failed is tried again
    eviction_wait: float = 10.0  # seconds a load waits for a busy model to go idle when full; then 503
    # -- Triton's system shared-memory extension (modelport/shm.py) --
    # "off": its doors and tensors in shared memory are refused (Triton's --allow-client-shm=false);
    # "local": served to clients on this host only (loopback connections); "on": to any client the doors
    # admit (register/unregister/status are admin doors). Regions map objects under /dev/shm only.
    system_shared_memory: str = "off"
    shared_memory_max_bytes: int = 1024**3  # most bytes the registered regions map together


@dataclass
class ModelParameters:
    uri: str | None = None
    version: str | None = None
    content_type: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # MLServer's: the artefact's format (passed to runtimes that read it), and a Python environment
    # whose site-packages the model's code imports from (environment_tarball is refused).
    format: str | None = None
    environment_path: str | None = None
    environment_tarball: str | None = None


@dataclass
class ModelSettings:
    name: str
    implementation: str | None = None
    parameters: ModelParameters = field(default_factory=ModelParameters)
    versions: list[str] = field(default_factory=list)  # MLServer's: listed in model metadata
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    platform: str = ""
    max_batch_size: int = 0
    max_batch_time: float = 0.0  # seconds, as in MLServer
    # Most requests that may wait for this model at once; more get 429. 0: no limit.
    max_queue_size: int = 0
    # Run inference in this many worker processes (0: in-process threads).
    parallel_workers: int = 0
    # Which hooks run in those processes: "predict", and optionally "preprocess"/"postprocess".
    worker_stages: list[str] = field(default_factory=lambda: ["predict"])
    # Ray Serve deployment options for this model (num_replicas, autoscaling_config, ...), used by `serve --ray`.
    ray: dict[str, Any] = field(default_factory=dict)
    # -- Production controls (modelport.controls) --
    response_cache: Any = None  # true or {"max_entries", "max_bytes", "ttl"}: V2 answers cached
    input_schema: Any = None  # a JSON Schema the V1 payload must match
    max_rows: int = 0  # most rows (first dimension / V1 instances) per request; 0: no limit
    max_request_bytes: int = 0  # largest payload (V2: tensor bytes; V1: body bytes); 0: no limit
    rate_limit: str | None = None  # this model's own limit, e.g. "1000/hour"
    # Routing: a traffic policy on this model's name ({"2": 90, "3": 10} or {"traffic": ..., "sticky": ...,
    # "shadow": ..., "rollback": ...}); warmup requests run after load() and before the model is ready
    # (a list of V2 request bodies, or {"count": N} generated from the declared inputs); an inference
    # graph (KServe InferenceGraph nodes) served as this model.
    traffic: dict[str, Any] = field(default_factory=dict)
    warmup: Any = None
    graph: dict[str, Any] = field(default_factory=dict)
    # Safe to run twice: a request whose worker process died is retried once on another (issue 9).
    idempotent: bool = False
    # The server's loop_budget_ms for this model's sync hooks (None: the server's; 0: always a thread).
    loop_budget_ms: float | None = None
    # Payload logging (observability): {"url": sink, "file": path, "mode": "all"|"request"|"response",
    # "queue_size": n}; each request/response goes out as a CloudEvent, as KServe's logger sends them.
    payload_log: dict[str, Any] = field(default_factory=dict)
    # Never unloaded to make room (memory_budget / max_loaded_models); loaded at start.
    pinned: bool = False
    # Where the settings file was found; relative URIs resolve against it.
    folder: str | None = None

    @property
    def version(self) -> str | None:
        return self.parameters.version

    @property
    def uri(self) -> str | None:
        """The model URI, resolved against the settings folder when relative."""
        uri = self.parameters.uri
        if uri and self.folder and "://" not in uri and not os.path.isabs(uri):
            return os.path.normpath(os.path.join(self.folder, uri))
        return uri


def _coerce(name: str, value: Any, kind: Any) -> Any:
    """Convert a value from a file, variable or flag to a setting's type, or raise SettingsError."""
    optional = "None" in str(kind)
    if str(kind) == "Any":  # structured settings (lists, objects): checked by the module that uses them
        return value
    kind = {"bool": bool, "int": int, "float": float, "str": str}.get(str(kind).split(" |")[0], kind)
    if value is None:
        if optional:
            return None
        raise SettingsError(f"Setting {name}: needs a value, got null")
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"expected true or false, got {value!r}")
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(f"expected an integer, got {value!r}")
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError(f"expected a number, got {value!r}")
            return float(value)
        return str(value)
    except (ValueError, TypeError) as exc:  # TypeError: a list or object where a number belongs
        raise SettingsError(f"Setting {name}: {exc}") from None


_SERVER_FIELDS = {f.name: f for f in dataclasses.fields(ServerSettings)}


def load_server_settings(
    settings_file: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ServerSettings:
    """Server settings with the documented precedence:
    defaults < file < MLSERVER_* environment < MODELPORT_* environment < overrides."""
    env = os.environ if env is None else env
    file_values: dict[str, Any] = {}
    if settings_file is not None and Path(settings_file).is_file():
        file_values = _read_json(Path(settings_file), "settings")
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    strict_raw = overrides.get("strict_settings", env.get(ENV_PREFIX + "STRICT_SETTINGS", file_values.get("strict_settings", False)))
    strict = _coerce("strict_settings", strict_raw, bool)
    values = _known_server_keys(file_values, f"settings file {settings_file}", strict)
    for key, name in mls.ENV_TO_SERVER.items():  # MLServer's variables rank below ours
        if key in env:
            values[name] = env[key]
    if "use_structured_logging" in values:
        if _coerce("use_structured_logging", values.pop("use_structured_logging"), bool):
            values["log_format"] = "json"
    for key, raw in env.items():
        if key.startswith(ENV_PREFIX):
            name = key[len(ENV_PREFIX) :].lower()
            if name in _SERVER_FIELDS:
                values[name] = raw
    unknown = sorted(set(overrides) - set(_SERVER_FIELDS))
    if unknown:
        raise SettingsError(f"Unknown server setting(s) {', '.join(unknown)}; known: {', '.join(_SERVER_FIELDS)}")
    values.update(overrides)
    typed = {name: _coerce(name, value, _SERVER_FIELDS[name].type) for name, value in values.items()}
    settings = ServerSettings(**typed)
    if settings.debug and "log_level" not in values:
        settings.log_level = "debug"
    if settings.metrics_port:
        logger.warning("Setting metrics_port (%d) is ignored: metrics are served on the HTTP port at /metrics", settings.metrics_port)
    validate_server_settings(settings)
    return settings


def _known_server_keys(values: Mapping[str, Any], where: str, strict: bool) -> dict[str, Any]:
    """A settings file's keys with MLServer's spellings mapped; unknown or unsupported keys warned about."""
    out: dict[str, Any] = {}
    unknown = []
    for key, value in values.items():
        name = mls.SERVER_KEY_ALIASES.get(key, key)
        if name in _SERVER_FIELDS or name == "use_structured_logging":
            out[name] = value
        elif key in mls.SERVER_KEYS_IGNORED:
            _unknown_key(f"MLServer setting {key} in {where} is not supported here ({mls.SERVER_KEYS_IGNORED[key]}); ignored", strict)
        else:
            unknown.append(key)
    if unknown:
        _unknown_key(f"Unknown server setting(s) {', '.join(sorted(unknown))} in {where}; ignored. Known: {', '.join(_SERVER_FIELDS)}", strict)
    return out


def _unknown_key(message: str, strict: bool) -> None:
    if strict:
        raise SettingsError(message.replace("; ignored", "") + " (strict_settings is on)")
    logger.warning("%s", message)


def validate_server_settings(s: ServerSettings) -> None:
    """Raise SettingsError naming the first setting that cannot be used."""
    for name in ("http_port", "grpc_port"):
        port = getattr(s, name)
        if not 0 <= port <= 65535:
            raise SettingsError(f"Setting {name}: {port} is not a TCP port (0-65535)")
    for name in ("workers", "inference_threads", "max_request_size", "max_header_size", "max_header_count",
                 "max_archive_size", "max_archive_files"):
        if getattr(s, name) < 1:
            raise SettingsError(f"Setting {name}: must be at least 1")
    if s.grpc_max_message_size < 1 and s.grpc_max_message_size != -1:
        raise SettingsError("Setting grpc_max_message_size: must be at least 1, or -1 for no limit")
    if s.parallel_workers < 0:
        raise SettingsError("Setting parallel_workers: must not be negative")
    for name in ("grace_period", "request_timeout", "max_asyncio_workers", "max_batch_size", "max_batch_time", "max_queue_size",
                 "max_connections", "drain_delay", "decode_offload_size", "loop_budget_ms", "malloc_cache_size"):
        if getattr(s, name) < 0:
            raise SettingsError(f"Setting {name}: must not be negative")
    for name in ("header_timeout", "body_timeout", "keep_alive_timeout"):
        if not getattr(s, name) > 0:
            raise SettingsError(f"Setting {name}: must be more than 0 seconds")
    if s.log_level.lower() not in ("debug", "info", "warning", "error", "critical"):
        raise SettingsError(f"Setting log_level: {s.log_level!r} is not debug, info, warning, error or critical")
    if s.log_format not in ("text", "json"):
        raise SettingsError(f"Setting log_format: {s.log_format!r} is not 'text' or 'json'")
    if s.system_shared_memory not in ("off", "local", "on"):
        raise SettingsError(f"Setting system_shared_memory: {s.system_shared_memory!r} is not off, local or on")
    if s.shared_memory_max_bytes < 1:
        raise SettingsError("Setting shared_memory_max_bytes: must be at least 1")
    if s.system_shared_memory != "off" and s.workers > 1:  # a region lives in the process that mapped it
        raise SettingsError("Setting system_shared_memory: regions are mapped by one process, so it cannot be used "
                            "with workers > 1 (a worker would not know another's regions); use workers 1")
    if s.model_control_mode not in ("none", "poll"):
        raise SettingsError(f"Setting model_control_mode: {s.model_control_mode!r} is not 'none' or 'poll'")
    if s.poll_interval <= 0:
        raise SettingsError("Setting poll_interval: must be positive (seconds)")
    if s.max_shadow_requests < 0:
        raise SettingsError("Setting max_shadow_requests: must not be negative")
    if not 0.0 <= s.access_log_sample <= 1.0:
        raise SettingsError(f"Setting access_log_sample: {s.access_log_sample} is not between 0 and 1")
    for name in ("health_window", "health_degraded_error_rate", "health_failed_error_rate", "health_degraded_p99_ms", "health_min_requests"):
        if getattr(s, name) < 0:
            raise SettingsError(f"Setting {name}: must not be negative")
    _validate_residency(s)
    if s.predictor_protocol not in ("v1", "v2", "grpc-v2"):
        raise SettingsError(f"Setting predictor_protocol: {s.predictor_protocol!r} is not v1, v2 or grpc-v2")


def _validate_residency(s: ServerSettings) -> None:
    from .repository.residency import parse_size

    parse_size(s.memory_budget)  # raises naming the setting
    if s.max_loaded_models < 0:
        raise SettingsError("Setting max_loaded_models: must not be negative (0: no limit)")
    if s.max_concurrent_loads < 1:
        raise SettingsError("Setting max_concurrent_loads: must be at least 1")
    for name in ("load_retry_after", "eviction_wait"):
        if getattr(s, name) < 0:
            raise SettingsError(f"Setting {name}: must not be negative")


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SettingsError(f"Cannot read {what} file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{what} file {path} must hold a JSON object")
    return data


_MODEL_FIELDS = {f.name for f in dataclasses.fields(ModelSettings)} - {"folder"}
_PARAM_FIELDS = {f.name for f in dataclasses.fields(ModelParameters)}


def model_settings_from_dict(
    data: Mapping[str, Any], folder: str | None = None, default_name: str | None = None, strict: bool = False
) -> ModelSettings:
    data = dict(data)
    where = f" in {folder}" if folder else ""
    name = data.get("name") or default_name
    for key in sorted(set(data) & set(mls.MODEL_KEYS_IGNORED)):
        logger.debug("Model %s: %s is accepted and not used (%s)", name, key, mls.MODEL_KEYS_IGNORED[key])
        data.pop(key)
    unknown = sorted(set(data) - _MODEL_FIELDS)
    if unknown:
        if strict or "folder" in unknown:  # "folder" is ours, set from where the file is
            raise SettingsError(f"Unknown model setting(s) {', '.join(unknown)}{where}; known: {', '.join(sorted(_MODEL_FIELDS))}")
        logger.warning("Unknown model setting(s) %s%s; ignored. Known: %s", ", ".join(unknown), where, ", ".join(sorted(_MODEL_FIELDS)))
        for key in unknown:
            data.pop(key)
    name = data.pop("name", None) or default_name
    if not name or not isinstance(name, str):
        raise SettingsError(f"Model settings{where} need a \"name\"")
    params = data.pop("parameters", None) or {}
    if not isinstance(params, dict):
        raise SettingsError(f"Model {name}: \"parameters\" must be an object")
    params = {k: v for k, v in params.items() if k not in mls.PARAM_KEYS_IGNORED}
    bad = sorted(set(params) - _PARAM_FIELDS)
    if bad:
        if strict:
            raise SettingsError(f"Model {name}: unknown parameter(s) {', '.join(bad)}; known: {', '.join(sorted(_PARAM_FIELDS))}")
        logger.warning("Model %s: unknown parameter(s) %s; ignored. Known: %s", name, ", ".join(bad), ", ".join(sorted(_PARAM_FIELDS)))
        params = {k: v for k, v in params.items() if k not in bad}
    if params.get("environment_tarball"):
        raise SettingsError(
            f"Model {name}: parameters.environment_tarball is not supported; install the environment's packages "
            "into the server's Python environment, or unpack it and set parameters.environment_path"
        )
    versions = data.get("versions", [])
    if not isinstance(versions, list):
        raise SettingsError(f"Model {name}: \"versions\" must be a list of strings")
    data["versions"] = [str(v) for v in versions]
    if params.get("version") is not None:
        params["version"] = str(params["version"])
    for key in ("inputs", "outputs"):
        if not isinstance(data.get(key, []), list):
            raise SettingsError(f"Model {name}: \"{key}\" must be a list of tensor metadata")
    settings = ModelSettings(name=name, parameters=ModelParameters(**params), folder=folder, **data)
    settings.max_batch_size = _coerce(f"{name}.max_batch_size", settings.max_batch_size, int)
    settings.max_batch_time = _coerce(f"{name}.max_batch_time", settings.max_batch_time, float)
    settings.max_queue_size = _coerce(f"{name}.max_queue_size", settings.max_queue_size, int)
    settings.parallel_workers = _coerce(f"{name}.parallel_workers", settings.parallel_workers, int)
    settings.max_rows = _coerce(f"{name}.max_rows", settings.max_rows, int)
    settings.max_request_bytes = _coerce(f"{name}.max_request_bytes", settings.max_request_bytes, int)
    settings.idempotent = _coerce(f"{name}.idempotent", settings.idempotent, bool)
    settings.pinned = _coerce(f"{name}.pinned", settings.pinned, bool)
    settings.loop_budget_ms = _coerce(f"{name}.loop_budget_ms", settings.loop_budget_ms, float | None)
    if settings.payload_log:
        from .observability.payload import check_config

        try:
            check_config(name, settings.payload_log)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
    stages = settings.worker_stages
    order = ["preprocess", "predict", "postprocess"]
    if not isinstance(stages, list) or not stages or any(st not in order for st in stages):
        raise SettingsError(f"Model {name}: worker_stages must be a non-empty list of {', '.join(order)}")
    picked = sorted(order.index(st) for st in stages)
    if picked != list(range(picked[0], picked[-1] + 1)):
        raise SettingsError(f"Model {name}: worker_stages must be consecutive stages (e.g. preprocess and predict)")
    settings.worker_stages = [order[i] for i in picked]
    for key in ("traffic", "graph"):
        if not isinstance(getattr(settings, key), dict):
            raise SettingsError(f"Model {name}: \"{key}\" must be an object")
    if settings.warmup is not None and not isinstance(settings.warmup, (list, dict)):
        raise SettingsError(f"Model {name}: \"warmup\" must be a list of requests or {{\"count\": N}}")
    for key in ("max_batch_size", "max_batch_time", "max_queue_size", "parallel_workers", "max_rows", "max_request_bytes",
                "loop_budget_ms"):
        if (getattr(settings, key) or 0) < 0:
            raise SettingsError(f"Model {name}: {key} must not be negative")
    return settings


def load_model_settings(path: str | os.PathLike, strict: bool = False) -> ModelSettings:
    path = Path(path)
    return model_settings_from_dict(
        _read_json(path, "model settings"), folder=str(path.parent), default_name=path.parent.name, strict=strict
    )


def find_model_settings(folder: str | os.PathLike) -> list[Path]:
    """Every model-settings.json under ``folder`` (one per model version), in a stable order."""
    root = Path(folder)
    if not root.is_dir():
        raise SettingsError(f"Model folder {root} does not exist or is not a folder")
    return sorted(root.rglob("model-settings.json"))


def model_option(model: Any, settings: ModelSettings | None, key: str, default: Any = 0) -> Any:
    """A per-model option: from its settings, else an attribute of a model built in code, else ``default``."""
    s = settings or getattr(model, "settings", None)
    value = getattr(s, key, None) if s is not None else getattr(model, key, None)
    return value if value else default

"""Ray Serve: a model folder, or ``Model`` instances, as a Ray Serve application with one hop.

Each replica of the one deployment (``modelport``) is a whole modelport server without listeners: a
``ModelServer`` built from the same settings, holding every model of the folder, whose complete outermost
ASGI app (``server.app``: request edge, controls, CORS, the REST routes, the console) is what Ray's HTTP
proxy calls. So API keys, rate limits, CORS, the access log, tracing and the console apply under Ray as
on one server, and a request crosses one Ray hop (proxy → replica), not two. gRPC comes through Ray's
gRPC proxy to the same replicas (``GRPCInferenceService``, ModelStreamInfer too), behind the same controls.

Ray's options for the deployment (``num_replicas``, ``autoscaling_config``, ``max_ongoing_requests``,
``ray_actor_options``, ...) come from ``ray_options`` (``--ray-options``), else from the ``ray`` key of
the models' model-settings.json (they must agree: every replica holds every model). A server setting
Ray cannot honour stops start-up with a StartupError naming it (``check_settings``); nothing is ignored.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import threading
from typing import Any, Iterable

from ray import serve

from ..controls.grpc import call_client, call_headers
from ..errors import ModelportError, PermissionDenied, StartupError
from ..model import Model
from ..settings import ServerSettings, SettingsError, find_model_settings, load_model_settings

logger = logging.getLogger("modelport")

REPLICA_HEADER = "x-modelport-replica"
APP_NAME = "modelport"
DEPLOYMENT_NAME = "modelport"
GRPC_SERVICER = "modelport.wire.grpc.grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server"
# The deployment options one may set; anything else is a settings error, not silently ignored.
DEPLOYMENT_OPTIONS = (
    "num_replicas", "autoscaling_config", "max_ongoing_requests", "max_queued_requests", "ray_actor_options",
    "health_check_period_s", "health_check_timeout_s", "graceful_shutdown_timeout_s", "graceful_shutdown_wait_loop_s",
    "max_replicas_per_node", "placement_group_bundles", "placement_group_strategy",
)
# Requests a replica takes at once. Ray's default (5) suits a replica that runs one request at a time; a
# modelport replica is asynchronous (its own queue, batching and threads), and with more clients than that
# Ray's router backs off and retries: 32 connections on one replica of an I/O-bound model gave 15 req/s at
# 5 and 268 req/s at 64 (smoke runs of bench/ray_scaling.py). Ray options may set their own.
DEFAULT_MAX_ONGOING_REQUESTS = 64
# Ray's own knobs outside the deployment (``run``): where proxies run, and the local cluster's CPUs.
PROXY_LOCATIONS = ("EveryNode", "HeadOnly", "Disabled")
# request_timeout is each replica's deadline (504, as on one server) and, this much later, Ray's proxies'
# (408): a replica that stops answering, or dies before Ray tells the proxy (ray-project/ray#26772), cannot
# answer its own deadline, and without the proxy's a client would wait for good. The margin lets a live
# replica's own answer come first.
PROXY_DEADLINE_MARGIN_S = 1.0

# How every server setting fares under Ray. "replica": each replica's ModelServer applies it as one server
# does (per replica, as per worker under --workers); "ray": mapped onto Ray's proxy or deployment options.
# Any other entry is why Ray cannot honour it: a value other than the default stops start-up, naming it.
# A setting missing here is refused too (deny by default), so a new setting needs a decision for Ray.
UNDER_RAY: dict[str, str] = {
    "host": "ray", "http_port": "ray", "grpc_port": "ray", "enable_grpc": "ray", "keep_alive_timeout": "ray",
    "grace_period": "ray",
    "workers": "Ray runs replicas, not worker processes: set num_replicas in the Ray options instead",
    "grpc_max_message_size": "Ray's gRPC proxy keeps its own message size limits",
    "max_header_size": "Ray's HTTP proxy parses request heads with its own limits",
    "max_header_count": "Ray's HTTP proxy parses request heads with its own limits",
    "header_timeout": "Ray's HTTP proxy owns the connections",
    "body_timeout": "Ray's HTTP proxy owns the connections",
    "max_connections": "Ray's HTTP proxy owns the connections",
    "drain_delay": "Ray's proxy drains replicas itself (graceful_shutdown_wait_loop_s in the Ray options)",
    "metrics_port": "metrics are served at /metrics of each replica, and by Ray's own Prometheus endpoint",
    "access_log_format": "the access log has modelport's format (access_log)",
    "max_asyncio_workers": "a replica's event loop belongs to Ray",
    **{name: ("a shared-memory region is mapped by the replica that registered it, and Ray spreads requests over "
              "replicas (and hosts); serve without --ray for tensors in shared memory")
       for name in ("system_shared_memory", "shared_memory_max_bytes")},
    **{name: ("every replica holds every model on Ray; serve the folder without --ray to load models on demand "
              "under a budget, or scale idle replicas down with Ray's autoscaling") for name in (
        "max_loaded_models", "memory_budget", "max_concurrent_loads", "load_retry_after", "eviction_wait")},
    **{name: "replica" for name in (
        "max_request_size", "inference_threads", "loop_budget_ms", "request_timeout", "max_batch_size",
        "max_batch_time", "max_queue_size", "log_level", "log_format", "access_log", "enable_docs", "enable_metrics",
        "model_repository", "server_name", "predictor_host", "predictor_protocol", "predictor_use_ssl",
        "predictor_request_timeout_seconds", "predictor_request_retries", "predictor_health_check",
        "enable_latency_logging", "enable_ui", "strict_settings", "load_models_at_startup", "debug",
        "parallel_workers", "default_model_name", "default_model_implementation", "default_model_uri",
        "default_model_version", "api_keys", "api_keys_path", "auth_health", "auth_metrics", "repository_api",
        "rate_limit", "rate_limit_model", "rate_limit_header", "rate_limit_clients", "allowed_hosts", "cors_origins", "cors_methods",
        "cors_headers", "cors_max_age", "cors_allow_credentials", "model_control_mode", "poll_interval",
        "max_shadow_requests", "decode_offload_size", "malloc_cache_size", "gc_freeze", "enable_statistics",
        "health_window",
        "health_degraded_error_rate", "health_failed_error_rate", "health_degraded_p99_ms", "health_min_requests",
        "access_log_sample", "enable_tracing", "trusted_proxies", "max_archive_size", "max_archive_files",
    )},
}


def check_settings(settings: ServerSettings) -> None:
    """Raise StartupError naming the first setting Ray cannot honour (at a value other than its default)."""
    if settings.enable_grpc and settings.host not in ("0.0.0.0", "::", ""):
        raise StartupError(
            f"Setting enable_grpc=True cannot be used with Ray and host={settings.host!r}: Ray's gRPC proxy listens on "
            "every interface; set enable_grpc false, or host 0.0.0.0"
        )
    defaults = ServerSettings()
    for field in dataclasses.fields(ServerSettings):
        how = UNDER_RAY.get(field.name, "it has not been made to work under Ray yet")
        if how in ("replica", "ray"):
            continue
        value = getattr(settings, field.name)
        if value != getattr(defaults, field.name):
            raise StartupError(f"Setting {field.name}={value!r} cannot be used with Ray: {how}")


class _ReplicaHeader:
    """Outermost ASGI layer of a replica: every HTTP answer names the replica that served it. Ray's proxy
    sets x-request-id on every answer itself (the request's, else its own), so the edge's copy is dropped."""

    def __init__(self, app: Any, replica_id: str):
        self.app = app
        self.header = (REPLICA_HEADER.encode(), replica_id.encode())

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_named(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*(h for h in message.get("headers", ()) if h[0] != b"x-request-id"), self.header]
            await send(message)

        await self.app(scope, receive, send_named)


class _FixedModels:
    """Under Ray every replica holds the models it was deployed with: a repository load or unload, or a
    traffic change, would reach one replica of many, so it is refused (403, after auth) with what to do."""

    REASON = ("On Ray the models and their traffic are fixed when the application is deployed; change the model "
              "folder and redeploy (modelport serve --ray, or serve.run)")

    async def everywhere(self, action: str, name: str, version: str | None = None) -> None:
        raise PermissionDenied(self.REASON)

    def close(self) -> None:
        pass


def _refuse_changes(dataplane: Any) -> None:
    dataplane.coordinator = _FixedModels()
    for action in ("promote", "rollback"):
        setattr(dataplane, action, lambda *_, **__: _raise(PermissionDenied(_FixedModels.REASON)))
    read_traffic = dataplane.traffic
    dataplane.traffic = lambda name, doc=None: read_traffic(name, doc) if doc is None else _raise(PermissionDenied(_FixedModels.REASON))


def _raise(exc: Exception) -> Any:
    raise exc


class _GrpcContext:
    """What modelport's servicer reads from a grpc.aio context, over Ray's serialisable gRPC context."""

    def __init__(self, ray_context: Any):
        self._ray = ray_context

    def invocation_metadata(self) -> Any:
        return self._ray.invocation_metadata()

    def time_remaining(self) -> None:
        return None

    def peer(self) -> str:
        return self._ray.peer()

    def set_trailing_metadata(self, metadata: Any) -> None:
        self._ray.set_trailing_metadata(list(metadata))

    async def abort(self, code: Any, details: str = "") -> None:
        self._ray.set_code(code)
        self._ray.set_details(details)
        raise _Aborted()


class _Aborted(Exception):
    pass


def _grpc_tables() -> tuple[dict, dict, dict, Any]:
    """What a replica's RPCs look up per call, made once: each method's declared door, how its message
    names the model, and its empty answer (modelport/doors.py, as the gRPC door's own controls)."""
    from ..controls.grpc import model_reader
    from ..doors import GRPC_BY_METHOD
    from ..transports.grpc.errors import code_for
    from ..wire.grpc import grpc_predict_v2_pb2 as pb

    methods = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods
    doors = {m.name: GRPC_BY_METHOD[f"/inference.GRPCInferenceService/{m.name}"] for m in methods}
    readers = {name: model_reader(door) for name, door in doors.items()}
    empty = {m.name: getattr(pb, m.output_type.name) for m in methods}
    return doors, empty, readers, code_for


_GRPC_DOORS, _GRPC_EMPTY, _GRPC_MODEL, _grpc_code = _grpc_tables()


class ModelportReplica:
    """One replica: a whole modelport server (data plane, runners, controls, edge, REST, console)."""

    async def __init__(self, folder: str | None, models: list[Model], settings: ServerSettings):
        from ..cli import configure_logging
        from ..routing import compose
        from ..serving import malloc_tuning
        from ..serving.server import ModelServer
        from ..transports.grpc.servicer import InferenceServicer

        configure_logging(settings.log_level if not settings.debug else "debug", settings.log_format)
        settings = dataclasses.replace(settings, workers=1, enable_grpc=False, model_repository=folder or settings.model_repository)
        server = self._server = ModelServer(settings=settings)
        malloc_tuning.tune(settings.malloc_cache_size)
        repository = server.repository
        from_folder = bool(repository.models_dir or repository.default_model)
        folder_models = repository.build_folder() if from_folder and settings.load_models_at_startup else []
        repository.expect([(m, None) for m in models] + folder_models)
        compose.apply_policies(server, [(m, getattr(m, "settings", None)) for m in models] + folder_models)
        await server._load_models(models, folder_models)
        failed = [f"{e.name}: {e.reason}" for e in repository.entries() if e.state.value == "FAILED"]
        if failed:
            raise RuntimeError("Model(s) failed to load: " + "; ".join(failed))
        server._freeze_heap()  # as one server does once its models have loaded (serving/heap.py)
        compose.start_polling(server)
        _refuse_changes(server.dataplane)
        replica = serve.get_replica_context().replica_id
        self._id = getattr(replica, "unique_id", None) or str(replica)
        self._app = _ReplicaHeader(server.app, self._id)
        self._grpc = InferenceServicer(server.dataplane, server.observability.edge)
        self._controls = server.controls if server.controls.at_edge else None

    def __serve_build_asgi_app__(self) -> Any:
        return self._app

    def check_health(self) -> None:  # Ray Serve replaces a replica whose models stopped being ready
        for entry in self._server.repository.entries():
            if entry.model is not None and entry.state.value == "READY" and not entry.model.ready:
                raise RuntimeError(f"Model {entry.name} is not ready")

    async def _rpc(self, method: str, request: Any, grpc_context: Any) -> Any:
        """One unary RPC of GRPCInferenceService from Ray's gRPC proxy, behind the same controls."""
        try:
            if self._controls is not None:
                self._controls.check(_GRPC_DOORS[method], _GRPC_MODEL[method](request), call_headers(grpc_context),
                                     call_client(grpc_context))
            return await getattr(self._grpc, method)(request, _GrpcContext(grpc_context))
        except _Aborted:
            pass
        except ModelportError as exc:
            grpc_context.set_code(_grpc_code(exc))
            grpc_context.set_details(str(exc))
        return _GRPC_EMPTY[method]()

    # The unary RPCs of inference.GRPCInferenceService, by name, as Ray's gRPC proxy calls them.
    async def ServerLive(self, request: Any, grpc_context: Any) -> Any:
        return await self._rpc("ServerLive", request, grpc_context)

    async def ServerReady(self, request: Any, grpc_context: Any) -> Any:
        return await self._rpc("ServerReady", request, grpc_context)

    async def ModelReady(self, request: Any, grpc_context: Any) -> Any:
        return await self._rpc("ModelReady", request, grpc_context)

    async def ServerMetadata(self, request: Any, grpc_context: Any) -> Any:
        return await self._rpc("ServerMetadata", request, grpc_context)

    async def ModelMetadata(self, request: Any, grpc_context: Any) -> Any:
        return await self._rpc("ModelMetadata", request, grpc_context)

    async def ModelInfer(self, request: Any, grpc_context: Any) -> Any:
        return await self._rpc("ModelInfer", request, grpc_context)

    async def ModelStreamInfer(self, request_stream: Any, grpc_context: Any) -> Any:
        """The bidirectional stream, through Ray's gRPC proxy: authenticated when it opens, each message
        checked (and counted) as it is read; a refused message ends the stream with its status."""
        context = _GrpcContext(grpc_context)
        headers = client = None
        try:
            if self._controls is not None:
                headers, client = call_headers(grpc_context), call_client(grpc_context)
                self._controls.check(_GRPC_DOORS["ModelStreamInfer"], None, headers, client, count=False)

            async def checked():
                async for request in request_stream:
                    if self._controls is not None:
                        self._controls.check(_GRPC_DOORS["ModelStreamInfer"], _GRPC_MODEL["ModelStreamInfer"](request),
                                             headers, client)
                    yield request

            async for response in self._grpc.ModelStreamInfer(checked(), context):
                yield response
        except ModelportError as exc:
            grpc_context.set_code(_grpc_code(exc))
            grpc_context.set_details(str(exc))
            # A stream ends with its status only by raising: Ray answers with the code and details set above.
            raise _Aborted() from None

    async def ModelStatistics(self, request: Any, grpc_context: Any) -> Any:
        return await self._rpc("ModelStatistics", request, grpc_context)

    async def RepositoryIndex(self, request: Any, grpc_context: Any) -> Any:
        return await self._rpc("RepositoryIndex", request, grpc_context)

    async def RepositoryModelLoad(self, request: Any, grpc_context: Any) -> Any:
        return await self._rpc("RepositoryModelLoad", request, grpc_context)

    async def RepositoryModelUnload(self, request: Any, grpc_context: Any) -> Any:
        return await self._rpc("RepositoryModelUnload", request, grpc_context)

    # Without these Ray's proxy, which registers every method of the service, answers INTERNAL with a
    # replica traceback to any caller; through _rpc they are checked and answer as on one server.
    async def SystemSharedMemoryStatus(self, request: Any, grpc_context: Any) -> Any:
        return await self._rpc("SystemSharedMemoryStatus", request, grpc_context)

    async def SystemSharedMemoryRegister(self, request: Any, grpc_context: Any) -> Any:
        return await self._rpc("SystemSharedMemoryRegister", request, grpc_context)

    async def SystemSharedMemoryUnregister(self, request: Any, grpc_context: Any) -> Any:
        return await self._rpc("SystemSharedMemoryUnregister", request, grpc_context)

    async def __del__(self) -> None:
        await self._server.stop(grace_period=0)


def _validated(raw: dict[str, Any], where: str) -> dict[str, Any]:
    unknown = sorted(set(raw) - set(DEPLOYMENT_OPTIONS))
    if unknown:
        raise SettingsError(f"{where}: unknown Ray option(s) {', '.join(unknown)}; known: {', '.join(DEPLOYMENT_OPTIONS)}")
    return dict(raw)


def deployment_options(
    folder: str | None, models: Iterable[Model], settings: ServerSettings,
    options: dict[str, dict[str, Any]] | None = None, ray_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The one deployment's Ray options: ``ray_options``, else the models' own (which must agree)."""
    names: list[str] = []
    per_model: dict[str, dict] = {}
    for path in find_model_settings(folder) if folder else ():
        spec = load_model_settings(path)
        names.append(spec.name)
        if getattr(spec, "ray", None):
            per_model[spec.name] = _validated(spec.ray, f"Model {spec.name}")
    for model in models:
        names.append(model.name)
        own = getattr(model, "ray_options", None)
        if own:
            per_model[model.name] = _validated(own, f"Model {model.name}")
    for name, raw in (options or {}).items():
        per_model[name] = _validated(raw, f"Model {name}")
    if not names:
        raise SettingsError("Nothing to deploy on Ray: no models in the folder and none given")
    if ray_options is not None:
        chosen = _validated(ray_options, "--ray-options")
    else:
        distinct = {json.dumps(v, sort_keys=True) for v in per_model.values()}
        if len(distinct) > 1:
            raise SettingsError(
                "Every Ray replica holds every model, so the models' Ray options must agree; they differ for "
                + ", ".join(sorted(per_model)) + ". Give one set with --ray-options (build_app(ray_options=...))"
            )
        chosen = next(iter(per_model.values()), {})
    chosen.setdefault("ray_actor_options", {"num_cpus": 1})
    chosen.setdefault("max_ongoing_requests", DEFAULT_MAX_ONGOING_REQUESTS)
    # Ray waits this long for a stopping replica's requests: the server's own grace period.
    chosen.setdefault("graceful_shutdown_timeout_s", settings.grace_period)
    return chosen


def build_app(
    folder: str | None = None,
    models: Iterable[Model] = (),
    settings: ServerSettings | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    ray_options: dict[str, Any] | None = None,
) -> Any:
    """The Ray Serve application (``serve.run(build_app(...))``) for a model folder and/or models built in code."""
    settings = settings or ServerSettings()
    check_settings(settings)
    models = list(models)
    chosen = deployment_options(folder, models, settings, options, ray_options)
    deployment = serve.deployment(serve.ingress()(ModelportReplica), name=DEPLOYMENT_NAME)
    return deployment.options(**chosen).bind(folder, models, settings)


def run(
    folder: str | None = None,
    models: Iterable[Model] = (),
    settings: ServerSettings | None = None,
    address: str | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    blocking: bool = True,
    ray_options: dict[str, Any] | None = None,
    proxy_location: str | None = None,
    num_cpus: float | None = None,
) -> None:
    """Start (or join, with ``address``) a Ray cluster, serve the application on ``settings.http_port`` (and
    gRPC on ``settings.grpc_port``), and, when ``blocking``, wait for SIGTERM/SIGINT, then shut Serve down."""
    import ray

    settings = settings or ServerSettings()
    if proxy_location is not None and proxy_location not in PROXY_LOCATIONS:
        raise StartupError(f"--ray-proxy-location {proxy_location!r} is not one of {', '.join(PROXY_LOCATIONS)}")
    app = build_app(folder, models, settings, options, ray_options)
    stop = threading.Event()
    previous = {}

    def catch_signals() -> None:  # ours, set before Ray starts and again after (ray.init installs its own)
        for sig in (signal.SIGTERM, signal.SIGINT):
            handler = signal.signal(sig, lambda *_: stop.set())
            previous.setdefault(sig, handler)

    if blocking:
        catch_signals()
    try:
        init: dict[str, Any] = {"num_cpus": num_cpus} if num_cpus is not None and address is None else {}
        ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=True, **init)
        if blocking:
            catch_signals()
        http = {"host": settings.host, "port": settings.http_port, "keep_alive_timeout_s": int(settings.keep_alive_timeout)}
        grpc = {"port": settings.grpc_port, "grpc_servicer_functions": [GRPC_SERVICER]} if settings.enable_grpc else None
        if settings.request_timeout > 0:
            deadline = {"request_timeout_s": settings.request_timeout + PROXY_DEADLINE_MARGIN_S}
            http.update(deadline)
            if grpc is not None:
                grpc.update(deadline)
        serve.start(http_options=http, grpc_options=grpc, proxy_location=proxy_location)
        # Serve logs every request in every replica by default; modelport's own access log is the setting for that.
        logging_config = {"log_level": "WARNING", "enable_access_log": False}
        serve.run(app, name=APP_NAME, route_prefix="/", blocking=False, logging_config=logging_config)
        logger.info("Listening for HTTP on http://%s:%d (Ray Serve)", settings.host, settings.http_port)
        if settings.enable_grpc:
            logger.info("Listening for gRPC on %s:%d (Ray Serve)", settings.host, settings.grpc_port)
        if not blocking:
            return
        stop.wait()
        logger.info("Stopping Ray Serve")
        serve.shutdown()
        ray.shutdown()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    logger.info("Server stopped")


__all__ = ["APP_NAME", "DEPLOYMENT_NAME", "REPLICA_HEADER", "UNDER_RAY", "ModelportReplica", "build_app", "check_settings", "run"]

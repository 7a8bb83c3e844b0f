"""The composition root: everything a server is made of, built from its settings, in one place.

``build(server, settings)`` makes the pieces in the order requests meet them, and leaves them on the
server: ``metrics``, ``observability``, ``threads``, ``controls``, ``dataplane`` (with routing attached),
``rest_app`` (the REST door, dispatching by the declared doors of modelport/doors.py, with its mounts)
and ``app``: the complete outermost ASGI app (request edge → controls and CORS → REST app). The gRPC
server is built from the same pieces when it starts (:func:`grpc_checks`). ``ModelServer``
calls this (again when ``start()`` reads flags and environment); every mode that serves the REST app
(one process, ``--workers N``, Ray replicas through ``ModelServer(settings=...).app``) gets the same stack.
"""

from __future__ import annotations

from typing import Any

from .. import storage
from ..repository import residency
from ..shm import SharedMemory
from ..compat.mlserver.handlers import CustomRoutes
from ..controls import Controls, Cors
from ..controls.controlled_plane import ControlledDataPlane
from ..controls.origin import HostRule
from ..execution.hook_threads import HookThreads
from ..observability.metrics import Metrics
from ..observability.edge import EdgeApp
from ..observability.setup import Observability
from ..routing import compose as routing
from ..settings import ModelParameters, ModelSettings, ServerSettings
from ..transports.rest import RestApp
from ..transports.rest.mlflow_scoring import mount_mlflow_scoring


def build(server: Any, s: ServerSettings) -> None:
    server.settings = s
    storage.set_archive_limits(s.max_archive_size, s.max_archive_files)  # model archives unpacked from here on
    server.metrics = Metrics() if s.enable_metrics else None
    # Observability: statistics, request logs, tracing, payload logs (modelport/observability).
    server.observability = Observability(s, server.metrics, server._tracer_provider)
    # Sync hooks see the request's context (its span; its id in JSON logs) only when that is used.
    server.threads = HookThreads(s.inference_threads, copy_context=server.observability.tracing is not None or s.log_format == "json")
    _repository(server, s)
    # Production controls (modelport.controls): checks at both doors, per-model controls in the data plane.
    server.controls = Controls(s, server.repository, server.metrics.registry if server.metrics else None)
    server.dataplane = ControlledDataPlane(
        server.repository, server.metrics, s.server_name, s.request_timeout, s.max_queue_size, controls=server.controls,
        stats=server.observability.stats,
    )
    if server.observability.stats is not None:  # cache hits and misses in Triton's statistics
        server.dataplane.cache_observer = server.observability.cache_observer
    # Routing: traffic policies and graphs resolve in the data plane (see modelport/routing).
    routing.attach(server, s)
    residency.attach(server, s)  # more models than memory: load on demand, evict LRU (residency.py)
    # Triton's system shared-memory regions (off unless system_shared_memory says otherwise).
    server.dataplane.shared_memory = SharedMemory(s.system_shared_memory, s.shared_memory_max_bytes)
    server.app = server.rest_app = RestApp(
        server.dataplane, server.metrics, s.max_request_size, s.enable_docs, s.decode_offload_size
    )
    # Mounts: route trees beside the inference routes, each with its own declared doors.
    mount_mlflow_scoring(server)  # MLflow's /invocations, /ping, /health, /version
    # MLServer runtimes' @custom_handler endpoints: mounts too, added as such models are registered.
    server.custom_routes = CustomRoutes(server.rest_app, server.repository)
    server.console = None
    if s.enable_ui:  # the console at /ui
        from ..ui import mount_console

        server.console = mount_console(server)
    cors = Cors(s.cors_origins, s.cors_methods, s.cors_headers, s.cors_max_age, s.cors_allow_credentials) if s.cors_origins else None
    if cors is not None:  # the admin Origin check lets the listed origins (not "*") through
        server.rest_app.allowed_origins = frozenset(o for o in cors.origins if o != "*")
    hosts = HostRule(s.allowed_hosts, s.host)  # validated whatever the keys
    if not server.controls.keys:  # with keys an admin door needs an admin key, which a rebinding page cannot hold
        server.rest_app.admin_hosts = hosts
    if server.controls.at_edge or cors is not None:
        from ..controls.rest import ControlledRestApp

        server.app = ControlledRestApp(server.app, server.controls, cors)
    # Outermost: request ids, the access log and spans cover every answer, the controls' 401/429 too.
    server.app = EdgeApp(server.app, server.observability.edge)


def grpc_checks(server: Any) -> Any:
    """The gRPC door's controls: what runs before each method's handler (None: no controls at the edge).
    The gRPC server wraps each handler once with the drain, the error table and these."""
    if not server.controls.at_edge:
        return None
    from ..controls.grpc import GrpcControls

    return GrpcControls(server.controls)


def _repository(server: Any, s: ServerSettings) -> None:
    registered = server._registered_models
    if registered is not None and s.model_repository and not registered.models_dir:
        registered.models_dir = s.model_repository
    # MLServer compatibility: strict model settings, and the MLSERVER_MODEL_* default model.
    server.repository.strict = s.strict_settings
    if s.default_model_name and s.default_model_implementation and server.repository.default_model is None:
        server.repository.default_model = ModelSettings(
            name=s.default_model_name, implementation=s.default_model_implementation,
            parameters=ModelParameters(uri=s.default_model_uri, version=s.default_model_version),
        )


__all__ = ["build", "grpc_checks"]

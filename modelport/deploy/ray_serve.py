"""Ray Serve: a model folder, or ``Model`` instances, as a Ray Serve application.

The HTTP ingress is modelport's own REST app (the same V1/V2/OpenAPI routes and errors). It runs in an
ingress deployment whose data plane holds one proxy per model; each model runs in a deployment of its
own, whose replicas are each a complete modelport data plane and runner for that model, so batching,
hooks, input checks and worker processes keep their semantics. Every answer carries the replica that
served it in ``x-modelport-replica``. Per-model Ray options (``num_replicas``, ``autoscaling_config``,
``max_ongoing_requests``, ``ray_actor_options``, ...) come from the ``ray`` key of model-settings.json
or, for models built in code, from ``options={name: {...}}``.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
from dataclasses import dataclass
from typing import Any, Iterable

from ray import serve
from ray.exceptions import RayActorError, RayTaskError

from ..dataplane import DataPlane
from ..errors import InferenceError, ModelNotReady, ModelportError
from ..metrics import Metrics
from ..model import Model
from ..repository import ModelRepository, ModelState, build_model
from ..settings import ModelSettings, ServerSettings, SettingsError, find_model_settings, load_model_settings
from ..transports.rest import RestApp
from ..types import InferRequest

logger = logging.getLogger("modelport")

REPLICA_HEADER = "x-modelport-replica"
APP_NAME = "modelport"
# The deployment options a model may set; anything else is a settings error, not silently ignored.
DEPLOYMENT_OPTIONS = (
    "num_replicas", "autoscaling_config", "max_ongoing_requests", "max_queued_requests", "ray_actor_options",
    "health_check_period_s", "health_check_timeout_s", "graceful_shutdown_timeout_s", "graceful_shutdown_wait_loop_s",
)


@dataclass
class _Failed:
    """A replica's answer when the request failed as a client error would: raised again at the ingress.

    Returned rather than raised so that Ray does not log a traceback for every 4xx."""

    error: ModelportError


@dataclass
class _Spec:
    """What a replica needs to build its model: settings from a folder, or a model built in code."""

    settings: ModelSettings | None = None
    model: Model | None = None


class ModelReplica:
    """One replica of one model: a modelport data plane and runner, without listeners."""

    async def __init__(self, spec: _Spec, server_settings: ServerSettings):
        from ..serving.server import ModelServer  # the composition root builds runners as a normal server does

        settings = dataclasses.replace(server_settings, workers=1, enable_grpc=False)
        self._server = ModelServer(settings=settings)
        model = spec.model if spec.model is not None else build_model(spec.settings)
        entry = await self._server.repository.load_model(model, spec.settings)
        if entry.state is not ModelState.READY:
            raise RuntimeError(f"Model {model.name} failed to load: {entry.reason}")
        self._model = model
        replica = serve.get_replica_context().replica_id
        self._id = getattr(replica, "unique_id", None) or str(replica)

    def metadata(self) -> dict[str, Any]:
        return self._model.metadata()

    async def infer(self, request: InferRequest, headers: dict | None) -> tuple[Any, dict] | _Failed:
        try:
            response, response_headers = await self._server.dataplane.infer(request, headers)
        except ModelportError as exc:
            return _Failed(exc)
        return response, {**response_headers, REPLICA_HEADER: self._id}

    async def infer_v1(self, payload: Any, headers: dict | None, verb: str) -> tuple[Any, dict] | _Failed:
        try:
            result, response_headers = await self._server.dataplane.infer_v1(self._model.name, payload, headers, verb)
        except ModelportError as exc:
            return _Failed(exc)
        return result, {**response_headers, REPLICA_HEADER: self._id}

    def check_health(self) -> None:  # Ray Serve replaces a replica whose model stopped being ready
        if not self._model.ready:
            raise RuntimeError(f"Model {self._model.name} is not ready")

    async def __del__(self) -> None:
        await self._server.repository.unload_all()
        self._server.threads.shutdown()


class _RemoteModel(Model):
    """The ingress's stand-in for a model that runs in its own deployment."""

    def __init__(self, name: str, handle: Any, metadata: dict[str, Any]):
        super().__init__(name)
        self._handle = handle
        versions = metadata.get("versions") or []
        self.version = versions[0] if versions else None
        self.platform = metadata.get("platform", "")
        self.inputs = list(metadata.get("inputs", []))
        self.outputs = list(metadata.get("outputs", []))
        self.ready = True

    async def predict(self, payload: Any, headers: dict | None = None, response_headers: dict | None = None) -> Any:
        if isinstance(payload, InferRequest):
            return await self._call(self._handle.infer.remote(payload, headers), response_headers)
        return await self._call(self._handle.infer_v1.remote(payload, headers, "predict"), response_headers)

    async def explain(self, payload: Any, headers: dict | None = None, response_headers: dict | None = None) -> Any:
        return await self._call(self._handle.infer_v1.remote(payload, headers, "explain"), response_headers)

    async def _call(self, call: Any, response_headers: dict | None) -> Any:
        try:
            answer = await call
        except RayTaskError:  # the model raised something unexpected: a 500, details in the replica's log
            raise InferenceError(f"Model {self.name} failed while serving the request; see its Ray replica's log") from None
        except RayActorError:
            raise ModelNotReady(self.name, "its replica died while serving the request; retry") from None
        if isinstance(answer, _Failed):
            raise answer.error
        result, headers = answer
        if response_headers is not None:
            response_headers.update(headers)
        return result


@serve.ingress()
class _Ingress:
    async def __init__(self, models: dict[str, Any], server_settings: ServerSettings):
        repository = ModelRepository()
        for name, handle in models.items():
            repository.update(_RemoteModel(name, handle, await handle.metadata.remote()))
        metrics = Metrics() if server_settings.enable_metrics else None
        s = server_settings
        self._app = RestApp(
            DataPlane(repository, metrics, s.server_name, s.request_timeout, s.max_queue_size),
            metrics, s.max_request_size, s.enable_docs,
        )

    def __serve_build_asgi_app__(self) -> RestApp:
        return self._app


def _options(name: str, raw: dict[str, Any] | None) -> dict[str, Any]:
    raw = dict(raw or {})
    unknown = sorted(set(raw) - set(DEPLOYMENT_OPTIONS))
    if unknown:
        raise SettingsError(f"Model {name}: unknown Ray option(s) {', '.join(unknown)}; known: {', '.join(DEPLOYMENT_OPTIONS)}")
    raw.setdefault("ray_actor_options", {"num_cpus": 1})
    return raw


def build_app(
    folder: str | None = None,
    models: Iterable[Model] = (),
    settings: ServerSettings | None = None,
    options: dict[str, dict[str, Any]] | None = None,
) -> Any:
    """The Ray Serve application (``serve.run(build_app(...))``) for a model folder and/or models built in code."""
    settings = settings or ServerSettings()
    if settings.max_loaded_models or settings.memory_budget:  # a mode that cannot honour a setting says so
        raise SettingsError("max_loaded_models and memory_budget are not honoured with --ray: each model is its own "
                            "Ray Serve deployment; scale idle ones down with its autoscaling_config instead")
    options = options or {}
    specs: dict[str, tuple[_Spec, dict]] = {}
    if folder:
        for path in find_model_settings(folder):
            spec = load_model_settings(path)
            if spec.name in specs:
                raise SettingsError(f"Model {spec.name}: one deployment per model name; versions are not supported on Ray yet")
            specs[spec.name] = (_Spec(settings=spec), getattr(spec, "ray", None) or options.get(spec.name))
    for model in models:
        specs[model.name] = (_Spec(model=model), options.get(model.name) or getattr(model, "ray_options", None))
    if not specs:
        raise SettingsError("Nothing to deploy on Ray: no models in the folder and none given")
    bound = {
        name: serve.deployment(ModelReplica, name=f"model-{name}").options(**_options(name, raw)).bind(spec, settings)
        for name, (spec, raw) in specs.items()
    }
    return serve.deployment(_Ingress, name="ingress").options(ray_actor_options={"num_cpus": 0}).bind(bound, settings)


def run(
    folder: str | None = None,
    models: Iterable[Model] = (),
    settings: ServerSettings | None = None,
    address: str | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    blocking: bool = True,
) -> None:
    """Start (or join, with ``address``) a Ray cluster, serve the application on ``settings.http_port``,
    and, when ``blocking``, wait for SIGTERM/SIGINT, then shut Serve down."""
    import ray

    settings = settings or ServerSettings()
    app = build_app(folder, models, settings, options)
    stop = threading.Event()
    previous = {}

    def catch_signals() -> None:  # ours, set before Ray starts and again after (ray.init installs its own)
        for sig in (signal.SIGTERM, signal.SIGINT):
            handler = signal.signal(sig, lambda *_: stop.set())
            previous.setdefault(sig, handler)

    if blocking:
        catch_signals()
    try:
        ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=True)
        if blocking:
            catch_signals()
        serve.start(http_options={"host": settings.host, "port": settings.http_port})
        # Serve logs every request in every replica by default; modelport's own access log is the setting for that.
        logging_config = {"log_level": "WARNING", "enable_access_log": bool(settings.access_log)}
        serve.run(app, name=APP_NAME, route_prefix="/", blocking=False, logging_config=logging_config)
        logger.info("Listening for HTTP on http://%s:%d (Ray Serve)", settings.host, settings.http_port)
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


__all__ = ["APP_NAME", "REPLICA_HEADER", "ModelReplica", "build_app", "run"]

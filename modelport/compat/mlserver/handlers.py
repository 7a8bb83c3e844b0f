"""MLServer's custom REST endpoints (``@custom_handler(rest_path="/invocations")`` on a runtime's
method), served on the REST door.

:class:`CustomRoutes` is a table of (HTTP method, path) -> the model that declares it, its bound
method, and the route's kind (always ``"infer"``: a custom endpoint runs model code). Each path is a
mount on the REST app, so these routes cost the inference routes nothing. The endpoints are FastAPI
handlers in MLServer (``Depends``, ``Header``, ``Request`` parameters), so they run in one small FastAPI
app built when a model declaring them loads; FastAPI is needed only then.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from ...errors import ModelNotReady, StartupError

_ATTR = "__custom_handler__"


@dataclass(frozen=True)
class CustomHandler:
    rest_path: str
    rest_method: str = "POST"


def custom_handler(rest_path: str, rest_method: str = "POST") -> Callable:
    """Marks a runtime's method as a REST endpoint at ``rest_path`` (MLServer's decorator)."""

    def mark(method: Callable) -> Callable:
        register_custom_handler(CustomHandler(rest_path, rest_method.upper()), method)
        return method

    return mark


def register_custom_handler(handler: CustomHandler, method: Callable) -> None:
    setattr(method, _ATTR, handler)


def get_custom_handlers(model: Any) -> list[tuple[CustomHandler, Callable]]:
    """The (handler, bound method) pairs a runtime declares."""
    found = []
    for name, member in inspect.getmembers(type(model)):
        handler = getattr(member, _ATTR, None)
        if isinstance(handler, CustomHandler):
            found.append((handler, getattr(model, name)))
    return found


@dataclass(frozen=True)
class CustomRoute:
    method: str
    path: str
    model: str
    endpoint: Callable
    kind: str = "infer"


class CustomRoutes:
    """The custom routes of one server's models, each a declared door (kind ``infer``, its model checked
    by :meth:`dispatch`) mounted on its REST app. A route at a path that MLflow's scoring routes already
    declare (mlserver-mlflow's ``/invocations`` and ``/ping``) is answered through that door: MLflow's
    handler defers to it. Any other clash with a built-in route fails the model's load."""

    def __init__(self, rest_app: Any, repository: Any):
        self.rest_app = rest_app
        self.repository = repository
        self.routes: dict[tuple[str, str], CustomRoute] = {}
        self._asgi: Any = None

    def add(self, model: Any) -> None:
        """The routes ``model`` declares (an MLServer runtime behind its adapter), if any; it also gets the
        server's metrics registry for its custom metrics (``mlserver.log``)."""
        mlmodel = getattr(model, "mlmodel", None)
        if mlmodel is None:
            return
        metrics = getattr(self.rest_app, "metrics", None)
        model.metrics_registry = metrics.registry if metrics is not None else None  # for mlserver.log
        for handler, endpoint in get_custom_handlers(mlmodel):
            key = (handler.rest_method, handler.rest_path)
            route = CustomRoute(handler.rest_method, handler.rest_path, model.name, endpoint)
            if key not in self.routes:
                self._declare(route)
            self.routes[key] = route
            self._asgi = None  # rebuilt with the new route on the next call

    def _declare(self, route: CustomRoute) -> None:
        from ...doors import INFER, MLFLOW, Door, RouteMiss

        try:
            door = self.rest_app.router.match(route.method, route.path)[0]
        except RouteMiss:
            door = None
        if door is not None and door.path == route.path:
            if door in MLFLOW:
                return  # MLflow's door answers it (mlflow_scoring defers to the runtime's own endpoint)
            raise StartupError(f"Model {route.model}: custom endpoint {route.method} {route.path} clashes with a built-in route")
        self.rest_app.mount(route.path, self.dispatch, [Door(
            f"mlserver.custom {route.method} {route.path}", route.method, route.path, INFER, "body",
            summary=f"A custom endpoint of model {route.model} (MLServer's @custom_handler)")])

    async def dispatch(self, door: Any, params: dict, scope: dict, receive: Callable) -> tuple:
        from ...controls.auth import authorize_model
        from ...transports.rest.errors import RouteNotFound

        route = self.routes.get((scope["method"], scope["path"]))
        if route is None:
            raise RouteNotFound(scope["path"])
        authorize_model(route.model)  # the edge checked the key's infer scope; it must also cover this model
        entry = self.repository._find(route.model, None)
        residency = getattr(self.repository, "residency", None)
        if entry is not None and entry.on_demand and residency is not None and entry.state.value != "READY":
            await residency.admit(entry, None)  # loaded on demand, as at every other door (residency.py)
        if entry is None or entry.model is None or not entry.model.ready or entry.state.value != "READY":
            raise ModelNotReady(route.model)
        if self._asgi is None:
            self._asgi = self._build()
        entry.enter()  # in flight: an eviction waits for this call, as for an inference
        try:
            return await _call_asgi(self._asgi, scope, receive)
        finally:
            entry.leave()

    def _build(self) -> Any:
        from ..._optional import import_optional

        fastapi = import_optional("fastapi", extra="mlserver")
        app = fastapi.FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        for route in self.routes.values():
            app.add_api_route(route.path, route.endpoint, methods=[route.method])
        return app


async def _call_asgi(app: Any, scope: dict, receive: Callable) -> tuple:
    """Run an ASGI app and collect its answer as the REST app's (status, body, content type, headers)."""
    start: dict = {}
    parts: list[bytes] = []

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))

    await app(dict(scope), receive, send)
    headers = [(k.lower(), v) for k, v in start.get("headers", []) if k.lower() not in (b"content-length", b"content-type")]
    content_type = next((v for k, v in start.get("headers", []) if k.lower() == b"content-type"), b"application/json")
    return start.get("status", 500), b"".join(parts), content_type, headers


__all__ = ["CustomHandler", "CustomRoute", "CustomRoutes", "custom_handler", "get_custom_handlers", "register_custom_handler"]

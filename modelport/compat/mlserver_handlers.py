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

from ..errors import ModelNotReady

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
    """The custom routes of one server's models, mounted on its REST app."""

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
            self.routes[key] = CustomRoute(handler.rest_method, handler.rest_path, model.name, endpoint)
            if all(prefix != handler.rest_path for prefix, _ in self.rest_app.mounts):
                self.rest_app.mounts.append((handler.rest_path, self.dispatch))
            self._asgi = None  # rebuilt with the new route on the next call

    async def dispatch(self, method: str, path: str, scope: dict, receive: Callable) -> tuple:
        from ..transports.rest.errors import MethodNotAllowed, RouteNotFound

        route = self.routes.get((method, path))
        if route is None:
            allowed = sorted(m for m, p in self.routes if p == path)
            if allowed:
                raise MethodNotAllowed(method, ", ".join(allowed))
            raise RouteNotFound(path)
        entry = self.repository._find(route.model, None)
        if entry is None or entry.model is None or not entry.model.ready or entry.state.value != "READY":
            raise ModelNotReady(route.model)
        if self._asgi is None:
            self._asgi = self._build()
        return await _call_asgi(self._asgi, scope, receive)

    def _build(self) -> Any:
        from .._optional import import_optional

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

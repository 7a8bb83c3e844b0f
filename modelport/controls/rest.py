"""The controls at the REST door: an ASGI wrapper around the REST app, composed by the server.

It classifies the request (kind of operation, model) from the path, runs ``Controls.check`` once,
answers CORS preflights, and adds CORS headers to responses. Refusals use the REST app's error
table, so they look like every other error: ``{"error": ...}`` with the matching status.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from ..transports.rest.errors import error_response
from ..transports.rest.mlflow_scoring import ROUTES as MLFLOW_ROUTES
from .cors import Cors
from .guard import Controls

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

_HEALTH = frozenset(("/", "/v2/health/live", "/v2/health/ready"))
# A declared route kind -> this table's kind ("public" routes are health checks).
_MOUNTED_KINDS = {"public": "health", "read": "metadata", "infer": "infer", "admin": "repository"}


def classify(method: str, path: str) -> tuple[str, str | None]:
    """(kind, model) for a REST path; paths this table does not know need the ``infer`` scope."""
    if path in _HEALTH:
        return "health", None
    if path == "/metrics":
        return "metrics", None
    if path.startswith("/v2/models/"):
        parts = path[len("/v2/models/") :].split("/")
        if parts == ["stats"]:  # every model's statistics, not a model called "stats"
            return "metadata", None
        name = parts[0] or None
        if parts[-1] == "ready" and len(parts) in (2, 4):
            return "health", name
        if parts[-1] == "infer" or parts[-1] == "generate" or parts[-1] == "generate_stream":
            return "infer", name
        return "metadata", name
    if path.startswith("/v1/models/"):
        rest = path[len("/v1/models/") :]
        name, sep, verb = rest.rpartition(":")
        if sep and verb in ("predict", "explain"):
            return "infer", name or None
        return "health", rest or None  # GET /v1/models/{m}: KServe's V1 readiness
    if path.startswith("/v2/repository/"):
        parts = path[len("/v2/repository/") :].split("/")
        if len(parts) == 3 and parts[0] == "models":
            return "repository", parts[1]
        return "repository", None
    mounted = MLFLOW_ROUTES.get(path)
    if mounted is not None:  # MLflow's scoring routes; /invocations names its model in the app (a header)
        return _MOUNTED_KINDS[mounted], None
    if path in ("/v2", "/v2/", "/v1/models", "/openapi.json", "/docs") or path.startswith("/docs/"):
        return "metadata", None  # the API description and the Swagger UI's own assets
    return "infer", None


class GuardedRestApp:
    def __init__(self, app: Any, controls: Controls | None, cors: Cors | None):
        self.app = app
        self.controls = controls if controls is not None and controls.at_edge else None
        self.cors = cors

    def __getattr__(self, name: str) -> Any:  # the wrapped app's attributes (dataplane, metrics, ...)
        return getattr(self.app, name)

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        cors = self.cors
        origin = headers.get("origin") if cors is not None else None
        if origin is not None and scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            allowed = cors.allows(origin)
            extra = cors.preflight_headers(origin) if allowed else []
            return await _send(send, 204 if allowed else 403, b"" if allowed else b'{"error":"CORS origin not allowed"}', extra)
        extra = cors.response_headers(origin) if origin is not None and cors.allows(origin) else None
        if self.controls is not None:
            try:
                kind, model = classify(scope["method"], scope["path"])
                client = scope.get("client")
                self.controls.check(kind, model, headers, client[0] if client else None)
            except Exception as exc:  # noqa: BLE001 - a refusal is an error response like any other
                status, body, err_headers = error_response(exc, scope)
                return await _send(send, status, body, err_headers + (extra or []))
        if extra is None:
            return await self.app(scope, receive, send)

        async def send_with_cors(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await self.app(scope, receive, send_with_cors)


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = headers + [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["GuardedRestApp", "classify"]

"""The controls at the REST door: an ASGI wrapper around the REST app, composed by the server.

It matches the request to its declared door (modelport/doors.py: the REST app's own router, once;
the app reuses the match), runs ``Controls.check`` with the door and the model its path names,
answers CORS preflights, and adds CORS headers to responses. A path no door declares is 404 before
anything else. Refusals use the REST app's error table, so they look like every other error:
``{"error": ...}`` with the matching status.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from ..observability.edge import RESPONSE_HEADERS, decoded_headers
from ..transports.rest.app import MATCH
from .cors import Cors
from .controls import Controls

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

class ControlledRestApp:
    def __init__(self, app: Any, controls: Controls | None, cors: Cors | None):
        self.app = app
        self.controls = controls if controls is not None and controls.at_edge else None
        self.cors = cors

    def __getattr__(self, name: str) -> Any:  # the wrapped app's attributes (dataplane, metrics, ...)
        return getattr(self.app, name)

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = decoded_headers(scope)  # decoded once: the REST app's handlers reuse it
        cors = self.cors
        origin = headers.get("origin") if cors is not None else None
        if origin is not None and scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            allowed = cors.allows(origin)
            extra = cors.preflight_headers(origin) if allowed else []
            return await _send(send, 204 if allowed else 403, b"" if allowed else b'{"error":"CORS origin not allowed"}', extra,
                               scope.get(RESPONSE_HEADERS, ()))
        extra = cors.response_headers(origin) if origin is not None and cors.allows(origin) else None
        if self.controls is not None:
            try:
                found = scope[MATCH] = self.app.match(scope)
                door = found[0]
                client = scope.get("client")
                self.controls.check(door, found[2].get("model_name") if door.model == "path" else None, headers,
                                    client[0] if client else None)
            except Exception as exc:  # noqa: BLE001 - a refusal is an error response like any other
                status, body, err_headers = self.app.error(exc, scope)
                return await _send(send, status, body, err_headers + (extra or []), scope.get(RESPONSE_HEADERS, ()))
        if extra is None:
            return await self.app(scope, receive, send)

        async def send_with_cors(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await self.app(scope, receive, send_with_cors)


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]], extra: Any = ()) -> None:
    """An answer of the controls' own (a refusal, a preflight); ``extra``: the request edge's headers."""
    headers = [*headers, (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["ControlledRestApp"]

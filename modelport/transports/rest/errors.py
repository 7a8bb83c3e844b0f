"""The REST error table: one map from error code to HTTP status, one handler."""

from __future__ import annotations

import logging
import uuid

from ...compat.kserve.http_exception import http_exception
from ...errors import ErrorCode, ModelportError, RateLimited, internal_error_message
from ...observability import context as request_context
from ...wire.v2_json import dumps

logger = logging.getLogger("modelport")

HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_INPUT: 400,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.NOT_READY: 503,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.UNIMPLEMENTED: 501,
    ErrorCode.INTERNAL: 500,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.RESOURCE_EXHAUSTED: 429,
    ErrorCode.DEADLINE_EXCEEDED: 504,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.ALREADY_EXISTS: 400,  # as Triton's HTTP server answers it (gRPC: ALREADY_EXISTS)
}


class RouteNotFound(ModelportError):
    code = ErrorCode.NOT_FOUND

    def __init__(self, path: str):
        super().__init__(f"Not found: {path}")


class MethodNotAllowed(ModelportError):
    code = ErrorCode.INVALID_INPUT

    def __init__(self, method: str, allowed: str):
        super().__init__(f"Method {method} not allowed; use {allowed}")
        self.allowed = allowed


def error_response(exc: BaseException, scope: dict) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """Status, body and headers for any exception; unexpected ones are logged with their traceback."""
    headers: list[tuple[bytes, bytes]] = []
    if isinstance(exc, MethodNotAllowed):
        status = 405
        headers.append((b"allow", exc.allowed.encode()))
    elif isinstance(exc, ModelportError):
        status = HTTP_STATUS[exc.code]
        if getattr(exc, "status", None):  # InferenceError or a control that picks its own status
            status = exc.status
        if status >= 500 and exc.code is ErrorCode.INTERNAL:
            logger.error("%s %s failed: %s", scope["method"], scope["path"], exc, exc_info=exc)
    elif (http := http_exception(exc)) is not None:  # fastapi's HTTPException from a hook, as KServe answers it
        status, detail, extra = http
        headers += [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in extra.items()]
        return status, dumps({"detail": detail}), headers
    else:
        # Unexpected: the client gets an id to quote, the log gets the traceback under that id.
        status = 500
        request_id = _request_id(scope)
        logger.error("%s %s failed (request id %s)", scope["method"], scope["path"], request_id, exc_info=exc)
        return status, dumps({"error": internal_error_message(_model_of(scope["path"]), request_id)}), headers
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="modelport"'))
    elif isinstance(exc, RateLimited):
        headers.append((b"retry-after", str(exc.retry_after).encode()))
    if status == 413:
        # The rest of the body was not read; the connection cannot be reused.
        headers.append((b"connection", b"close"))
    return status, dumps({"error": exc.reason}), headers


def _request_id(scope: dict) -> str:
    info = request_context.current.get()
    if info is not None:  # the id the response echoes in x-request-id (observability.edge)
        return info.request_id
    for key, value in scope.get("headers") or ():
        if key == b"x-request-id" and 0 < len(value) <= 128:
            return value.decode("latin-1")
    return uuid.uuid4().hex[:16]


def _model_of(path: str) -> str | None:
    """The model a request path names (/v2/models/{m}/..., /v1/models/{m}:verb), if any."""
    for prefix in ("/v2/models/", "/v1/models/"):
        if path.startswith(prefix):
            name = path[len(prefix) :].split("/", 1)[0].rsplit(":", 1)[0]
            return name[:200] or None
    return None

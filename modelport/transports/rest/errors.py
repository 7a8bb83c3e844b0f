"""The REST error table: one map from error code to HTTP status, one handler."""

from __future__ import annotations

import logging

from ...errors import ErrorCode, InferenceError, ModelportError, RateLimited
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
        if isinstance(exc, InferenceError) and exc.status:
            status = exc.status
        if status >= 500 and exc.code is ErrorCode.INTERNAL:
            logger.error("%s %s failed: %s", scope["method"], scope["path"], exc, exc_info=exc)
    else:
        status = 500
        logger.error("%s %s failed", scope["method"], scope["path"], exc_info=exc)
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="modelport"'))
    elif isinstance(exc, RateLimited):
        headers.append((b"retry-after", str(exc.retry_after).encode()))
    if status == 413:
        # The rest of the body was not read; the connection cannot be reused.
        headers.append((b"connection", b"close"))
    message = exc.reason if isinstance(exc, ModelportError) else f"{type(exc).__name__}: {exc}"
    return status, dumps({"error": message}), headers

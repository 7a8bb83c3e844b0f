"""The gRPC error table: one map from error code to gRPC status, and :func:`abort_with`, with which the
one wrapper of every handler (``calls.py``) turns any exception a handler raises into that status.
Unexpected exceptions answer INTERNAL with an id and a pointer to the log, where their traceback is
written under that id; never the exception's class or text."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import grpc
import grpc.aio

from ...compat.kserve.http_exception import http_exception
from ...errors import ErrorCode, InferenceError, ModelportError, RateLimited, internal_error_message
from ...observability import context as request_context

logger = logging.getLogger("modelport")

GRPC_STATUS: dict[ErrorCode, grpc.StatusCode] = {
    ErrorCode.INVALID_INPUT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorCode.NOT_READY: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.UNIMPLEMENTED: grpc.StatusCode.UNIMPLEMENTED,
    ErrorCode.INTERNAL: grpc.StatusCode.INTERNAL,
    ErrorCode.PAYLOAD_TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorCode.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorCode.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorCode.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorCode.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorCode.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
}

# A model may pick an HTTP status for its InferenceError (REST honours it); this is the standard
# HTTP -> gRPC correspondence so the gRPC door honours the same choice.
_FROM_HTTP: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ALREADY_EXISTS,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def code_for(exc: BaseException) -> grpc.StatusCode:
    """The status a client gets for ``exc`` (no logging: for access logs and spans)."""
    if isinstance(exc, ModelportError):
        code = GRPC_STATUS[exc.code]
        if isinstance(exc, InferenceError) and exc.status:
            code = _from_http(exc.status)
        return code
    if (http := http_exception(exc)) is not None:  # fastapi's HTTPException from a hook
        return _from_http(http[0])
    return grpc.StatusCode.INTERNAL


def _from_http(status: int) -> grpc.StatusCode:
    return _FROM_HTTP.get(status, grpc.StatusCode.INTERNAL if status >= 500 else grpc.StatusCode.INVALID_ARGUMENT)


def status_for(exc: BaseException, method: str, request: Any = None) -> tuple[grpc.StatusCode, str]:
    """The status and message a client gets for ``exc``; logs what deserves a traceback."""
    if isinstance(exc, ModelportError):
        code = code_for(exc)
        if code is grpc.StatusCode.INTERNAL:
            logger.error("%s failed: %s", method, exc, exc_info=exc)
        return code, exc.reason
    if (http := http_exception(exc)) is not None:
        return _from_http(http[0]), str(http[1])
    model = getattr(request, "model_name", None) or None
    info = request_context.current.get()  # the id in the x-request-id trailing metadata (observability.edge)
    request_id = getattr(request, "id", None) or (info.request_id if info is not None else uuid.uuid4().hex[:16])
    logger.error("%s failed (request id %s)", method, request_id, exc_info=exc)
    return grpc.StatusCode.INTERNAL, internal_error_message(model, request_id)


async def abort_with(context: grpc.aio.ServicerContext, exc: Exception, method: str, request: Any = None) -> None:
    """End the call with the status ``exc`` maps to (raises grpc.aio.AbortError, as context.abort does)."""
    if isinstance(exc, RateLimited):  # REST's Retry-After, as trailing metadata
        context.set_trailing_metadata((("retry-after", str(exc.retry_after)),))
    await context.abort(*status_for(exc, method, request))


__all__ = ["GRPC_STATUS", "abort_with", "code_for", "status_for"]

"""The gRPC error table: one map from error code to gRPC status, and the one interceptor that
turns any exception a handler raises into that status. Unexpected exceptions answer INTERNAL with
an id and a pointer to the log, where their traceback is written under that id; never the
exception's class or text."""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import grpc.aio

from ...compat.http_exception import http_exception
from ...errors import ErrorCode, InferenceError, ModelportError, RateLimited, internal_error_message
from ...observability import context as request_context
from .intercept import WrappingInterceptor

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


class ErrorInterceptor(WrappingInterceptor):
    """Wraps every handler (ours and the health service's) so that no exception escapes unmapped."""

    def wrap(self, handler: Any, method: str) -> Any:
        return _guard(handler, method)


async def _abort(context: grpc.aio.ServicerContext, exc: Exception, method: str, request: Any = None) -> None:
    if isinstance(exc, RateLimited):  # REST's Retry-After, as trailing metadata
        context.set_trailing_metadata((("retry-after", str(exc.retry_after)),))
    await context.abort(*status_for(exc, method, request))


def _guard(handler: Any, method: str) -> Any:
    for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
        fn = getattr(handler, kind)
        if fn is not None:
            return handler._replace(**{kind: _guarded(fn, method)})
    return handler


def _guarded(fn: Callable, method: str) -> Callable:
    if inspect.isasyncgenfunction(fn):

        async def stream(request: Any, context: grpc.aio.ServicerContext):
            try:
                async for item in fn(request, context):
                    yield item
            except grpc.aio.AbortError:  # the handler chose its status already
                raise
            except Exception as exc:  # noqa: BLE001 - every failure becomes a status
                await _abort(context, exc, method)

        return stream
    if inspect.iscoroutinefunction(fn):

        async def unary(request: Any, context: grpc.aio.ServicerContext):
            try:
                return await fn(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:  # noqa: BLE001
                await _abort(context, exc, method, request)

        return unary
    return fn  # sync handlers run in gRPC's executor; none are registered


__all__ = ["GRPC_STATUS", "ErrorInterceptor", "status_for"]

"""The clients' one error hierarchy.

Every failure a client reports is a :class:`ClientError`. Third-party errors (httpx, grpc) are
translated once per transport, where the call is made, and chained with ``raise ... from exc``.

``status`` is the HTTP status the server answered with (over gRPC: the HTTP status the REST door
answers for the same error, so code can treat both alike), ``grpc_code`` the gRPC status name, and
``message`` the server's own text (the ``{"error": ...}`` of a REST body, a gRPC status's details).

These are :class:`modelport.errors.ModelportError` subclasses with a protocol-neutral ``code``, so
a model that calls another server and lets an error escape answers its own client sensibly.
"""

from __future__ import annotations

from ..errors import ErrorCode, ModelportError

_CODE_FOR_STATUS: dict[int, ErrorCode] = {
    400: ErrorCode.INVALID_INPUT,
    404: ErrorCode.NOT_FOUND,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    429: ErrorCode.RESOURCE_EXHAUSTED,
    501: ErrorCode.UNIMPLEMENTED,
    503: ErrorCode.UNAVAILABLE,
    504: ErrorCode.DEADLINE_EXCEEDED,
}

# gRPC status name -> the HTTP status for the same condition (the inverse of the servers' tables).
HTTP_FOR_GRPC: dict[str, int] = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


def code_for_status(status: int | None) -> ErrorCode:
    if status is None:
        return ErrorCode.UNAVAILABLE
    code = _CODE_FOR_STATUS.get(status)
    if code is not None:
        return code
    return ErrorCode.INVALID_INPUT if 400 <= status < 500 else ErrorCode.INTERNAL


class ClientError(ModelportError):
    """Base of every error a modelport client raises."""

    code = ErrorCode.UNAVAILABLE

    def __init__(self, message: str, status: int | None = None, grpc_code: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.grpc_code = grpc_code


class ServerError(ClientError):
    """The server answered with an error status; ``message`` is the server's own text."""

    def __init__(self, message: str, status: int, grpc_code: str | None = None):
        super().__init__(message, status, grpc_code)
        self.code = code_for_status(status)
        where = f"gRPC {grpc_code}" if grpc_code else f"HTTP {status}"
        self.reason = f"{where}: {message}"


class ConnectionFailed(ClientError):
    """The server could not be reached, or the connection broke before an answer came."""

    code = ErrorCode.UNAVAILABLE


class TLSError(ConnectionFailed):
    """The TLS handshake failed (untrusted or mismatched certificate); never retried."""


class RequestTimeout(ClientError):
    """No answer within the call's timeout."""

    code = ErrorCode.DEADLINE_EXCEEDED


class InvalidResponse(ClientError):
    """The server answered, but not with a valid protocol message."""

    code = ErrorCode.INTERNAL


__all__ = [
    "ClientError",
    "ConnectionFailed",
    "InvalidResponse",
    "RequestTimeout",
    "ServerError",
    "TLSError",
]

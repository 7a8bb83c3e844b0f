"""One error hierarchy for the whole server.

Each class carries a protocol-neutral :class:`ErrorCode`; every transport owns exactly one table from
that code to its own status (HTTP status, gRPC status code). Nothing here imports a web framework.
"""

from __future__ import annotations

import enum
import os
import re

from .redact import redact_credentials


class ErrorCode(enum.Enum):
    INVALID_INPUT = "invalid_input"
    NOT_FOUND = "not_found"
    NOT_READY = "not_ready"
    UNAVAILABLE = "unavailable"
    UNIMPLEMENTED = "unimplemented"
    INTERNAL = "internal"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    ALREADY_EXISTS = "already_exists"


class ModelportError(Exception):
    """Base of every error modelport answers a client with; ``reason`` is shown to the client."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, reason: str = ""):
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class InvalidInput(ModelportError):
    """The request is malformed or does not fit the model (HTTP 400, gRPC INVALID_ARGUMENT)."""

    code = ErrorCode.INVALID_INPUT


class InferenceError(ModelportError):
    """The model failed while serving a request (HTTP 500 unless ``status`` says otherwise)."""

    code = ErrorCode.INTERNAL

    def __init__(self, reason: str = "", status: int | None = None, debug_details: str | None = None):
        super().__init__(reason)
        self.status = status
        self.debug_details = debug_details


class ModelNotFound(ModelportError):
    code = ErrorCode.NOT_FOUND

    def __init__(self, model_name: str | None = None, version: str | None = None):
        self.model_name = model_name
        self.version = version
        what = f"Model {model_name}" if version is None else f"Model {model_name} version {version}"
        super().__init__(f"{what} not found")


class ModelNotReady(ModelportError):
    code = ErrorCode.NOT_READY

    def __init__(self, model_name: str, detail: str | None = None):
        self.model_name = model_name
        self.detail = detail
        super().__init__(f"Model {model_name} is not ready" + (f": {detail}" if detail else ""))


class UnsupportedProtocol(ModelportError):
    code = ErrorCode.INVALID_INPUT

    def __init__(self, protocol_version: str | None = None):
        self.protocol_version = protocol_version
        super().__init__(f"Unsupported protocol {protocol_version}")


class Unimplemented(ModelportError):
    """The operation exists in the protocol but this model or server does not provide it (501)."""

    code = ErrorCode.UNIMPLEMENTED


class ServerNotReady(ModelportError):
    code = ErrorCode.NOT_READY

    def __init__(self, detail: str = "Server is not ready"):
        super().__init__(detail)


class ServerNotLive(ModelportError):
    code = ErrorCode.UNAVAILABLE

    def __init__(self, detail: str = "Server is not live"):
        super().__init__(detail)


class StartupError(ModelportError):
    """The server cannot start (port in use, bad settings, ...); the message says why in one line."""


class PayloadTooLarge(ModelportError):
    code = ErrorCode.PAYLOAD_TOO_LARGE


class Overloaded(ModelportError):
    """Too many requests are queued for a model; the client should back off and retry."""

    code = ErrorCode.RESOURCE_EXHAUSTED


class Unauthenticated(ModelportError):
    """No credentials, or credentials the server does not know (HTTP 401, gRPC UNAUTHENTICATED)."""

    code = ErrorCode.UNAUTHENTICATED


class PermissionDenied(ModelportError):
    """Known credentials without the right to this operation or model (HTTP 403, gRPC PERMISSION_DENIED)."""

    code = ErrorCode.PERMISSION_DENIED


class RateLimited(Overloaded):
    """A client or model is over its rate limit; ``retry_after`` says in how many seconds a token frees up."""

    def __init__(self, reason: str = "", retry_after: int = 1):
        super().__init__(reason)
        self.retry_after = retry_after


class DeadlineExceeded(ModelportError):
    code = ErrorCode.DEADLINE_EXCEEDED


class StorageError(ModelportError):
    """A model's files could not be fetched: missing object, bad credentials, unreachable host,
    unsupported URI scheme, missing storage extra, or an unsafe/corrupt archive."""

    code = ErrorCode.UNAVAILABLE


class ModelMissingError(ModelportError):
    """A model's files are not where its load hook looked (KServe's name; ``str()`` is the path)."""

    code = ErrorCode.NOT_FOUND

    def __init__(self, path: str | os.PathLike = ""):
        super().__init__(os.fspath(path))
        self.path = path


class NoModelReady(ModelportError):
    """None of the models given to the server is ready (KServe's name)."""

    code = ErrorCode.NOT_READY

    def __init__(self, models: list, detail: str | None = None):
        self.models = models
        self.detail = detail
        names = [getattr(m, "name", str(m)) for m in models]
        text = f"Model with name {names[0]} is not ready." if len(names) == 1 else f"Models with names {','.join(names)} are not ready."
        super().__init__(text + (f" {detail}" if detail else ""))


class WorkersShouldBeLessThanMaxWorkersError(ModelportError):
    """More workers asked for than the server allows (KServe's name)."""

    code = ErrorCode.INVALID_INPUT

    def __init__(self, max_workers: int | None = None):
        super().__init__(f"Workers cannot be greater than {max_workers}")


# An absolute POSIX path inside a message (not the path part of a URL): "/srv/models/x/w.bin".
_ABS_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s'\"`:,;()\[\]{}<>/]+/)+[^\s'\"`:,;()\[\]{}<>/]*")


def public_reason(text: str, root: str | os.PathLike | None = None) -> str:
    """``text`` fit for an unauthenticated client: URL credentials masked, paths under ``root`` relative
    to it, any other absolute path cut to its last two components. The full text belongs in the server log."""
    text = redact_credentials(text)
    if root:
        base = os.path.abspath(os.fspath(root)).rstrip(os.sep) + os.sep
        for prefix in {base, os.path.realpath(base).rstrip(os.sep) + os.sep}:
            text = text.replace(prefix, "")
    return _ABS_PATH.sub(lambda m: ".../" + "/".join(m.group(0).rstrip("/").split("/")[-2:]), text)


def internal_error_message(model: str | None, request_id: str | None) -> str:
    """What a client reads for an unexpected failure: actionable, and nothing of the server's insides."""
    what = f"Model {model} failed while serving the request" if model else "The server failed to serve the request"
    return f"{what}; see the server log" + (f" (request id {request_id})" if request_id else "")


__all__ = [
    "ErrorCode",
    "ModelportError",
    "InvalidInput",
    "InferenceError",
    "ModelNotFound",
    "ModelNotReady",
    "UnsupportedProtocol",
    "Unimplemented",
    "ServerNotReady",
    "ServerNotLive",
    "PayloadTooLarge",
    "StartupError",
    "Overloaded",
    "DeadlineExceeded",
    "Unauthenticated",
    "PermissionDenied",
    "RateLimited",
    "StorageError",
    "ModelMissingError",
    "NoModelReady",
    "WorkersShouldBeLessThanMaxWorkersError",
]

"""The OpenAI-compatible REST routes, a thin door into the same data plane as every other route.

``/openai/v1/{completions,chat/completions,embeddings,models}`` and the same under ``/v1/`` — except
``/v1/models``, which is KServe V1's model list and stays so (use ``/openai/v1/models``). A request is
validated (pydantic, :mod:`.types`), handed to ``DataPlane.call`` (admission, deadline, metrics, hook
threads), and the answer encoded: JSON, or with ``"stream": true`` server-sent events ending in
``data: [DONE]``. Every error is OpenAI-shaped: ``{"error": {"message", "type", "param", "code"}}``,
with the status from the REST error table; a failure after the first event is one ``data:`` event
carrying that error object (the ``openai`` client raises it).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Callable

import pydantic

from ..controls.auth import authorize_model, may_see
from ..errors import ErrorCode, InvalidInput, ModelportError, internal_error_message
from ..streaming import ResponseStream
from ..transports.rest.errors import HTTP_STATUS, MethodNotAllowed, RouteNotFound
from ..transports.rest.sse import Streamed, event
from ..wire import v2_json
from ..models.openai.model import openai_methods
from ..models.openai.types import ChatCompletionRequest, CompletionRequest, EmbeddingRequest, ModelCard, ModelList

JSON = b"application/json"
DONE = b"data: [DONE]\n\n"

# path after the /v1 prefix -> (request type, model method, what it is called in messages)
_POSTS: dict[str, tuple[type, str, str]] = {
    "/completions": (CompletionRequest, "create_completion", "completions"),
    "/chat/completions": (ChatCompletionRequest, "create_chat_completion", "chat completions"),
    "/embeddings": (EmbeddingRequest, "create_embedding", "embeddings"),
}
# Served under /v1 too: every OpenAI route that no KServe V1 route already owns.
V1_ALIASES = frozenset("/v1" + p for p in _POSTS)
PREFIX = "/openai/v1"


class OpenAIRoutes:
    def __init__(self, dataplane: Any):
        self.dataplane = dataplane

    async def handle(self, method: str, path: str, headers: dict[str, str], read_body: Callable) -> Any:
        """A response tuple (status, body, content type, headers) or a :class:`Streamed`; never raises."""
        rest = path[len(PREFIX) :] if path.startswith(PREFIX) else path[len("/v1") :]
        try:
            if rest == "/models" or rest.startswith("/models/"):
                _allow(method, "GET")
                return self._models(rest[len("/models/") :] if rest != "/models" else None)
            route = _POSTS.get(rest)
            if route is None:
                raise RouteNotFound(path)
            _allow(method, "POST")
            return await self._post(route, headers, await read_body())
        except Exception as exc:  # noqa: BLE001 - every failure is an OpenAI-shaped answer
            status, body = error_body(exc, getattr(exc, "model", None))
            extra = [(b"allow", exc.allowed.encode())] if isinstance(exc, MethodNotAllowed) else []
            return status, body, JSON, extra

    def _models(self, model_id: str | None) -> Any:
        cards = [ModelCard(id=name) for name in self._openai_models()]
        if model_id is not None:
            card = next((c for c in cards if c.id == model_id), None)
            if card is None:
                raise _NotFound(f"The model `{model_id}` does not exist", "model")
            return 200, _dumps(card), JSON, []
        return 200, _dumps(ModelList(data=cards)), JSON, []

    def _openai_models(self) -> list[str]:
        names = []
        for entry in self.dataplane.repository.entries():
            model = entry.model
            if model is not None and entry.state.value == "READY" and openai_methods(model) and may_see(entry.name):
                names.append(entry.name)
        return sorted(set(names))

    async def _post(self, route: tuple[type, str, str], headers: dict[str, str], body: bytes) -> Any:
        request_type, method, what = route
        doc = v2_json.loads(body) if body.strip() else None
        if not isinstance(doc, dict):
            raise InvalidInput("The request body must be a JSON object")
        try:
            request = request_type.model_validate(doc)
        except pydantic.ValidationError as exc:
            raise _invalid(exc) from None
        # The door's model is the body's "model" (modelport/doors.py): the caller's key must cover it.
        authorize_model(request.model)
        entry = self.dataplane.repository._find(request.model, None)
        if entry is None or entry.model is None:
            raise _NotFound(f"The model `{request.model}` does not exist", "model")
        if method not in openai_methods(entry.model):
            raise _Unsupported(f"Model {request.model} does not serve {what}", "model")
        try:
            result = await self.dataplane.call(request.model, method, request, None, {"headers": headers}, headers=headers)
        except Exception as exc:
            exc.model = request.model  # type: ignore[attr-defined] - named in the client's message
            raise
        if isinstance(result, ResponseStream):
            return await _open(result, request.model)
        if getattr(request, "stream", False):
            # A model that answered a stream request with one object: send it as one chunk.
            return Streamed(_empty(), result, _chunk, _error_event, DONE, model=request.model)
        return 200, _dumps(result), JSON, []


class _NotFound(ModelportError):
    code = ErrorCode.NOT_FOUND

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


class _Unsupported(ModelportError):
    code = ErrorCode.INVALID_INPUT

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


def _invalid(exc: pydantic.ValidationError) -> InvalidInput:
    first = exc.errors()[0]
    param = ".".join(str(p) for p in first["loc"]) or None
    error = InvalidInput(f"Invalid request: {param}: {first['msg']}" if param else f"Invalid request: {first['msg']}")
    error.param = param  # type: ignore[attr-defined]
    return error


def error_object(exc: BaseException, model: str | None = None) -> tuple[int, dict]:
    if isinstance(exc, ModelportError):
        status = 405 if isinstance(exc, MethodNotAllowed) else HTTP_STATUS.get(exc.code, 500)
        message = exc.reason
    else:  # logged with a request id; the client reads nothing of the server's insides
        request_id = uuid.uuid4().hex[:16]
        logging.getLogger("modelport").error("OpenAI request to model %s failed (request id %s)", model, request_id, exc_info=exc)
        status, message = 500, internal_error_message(model, request_id)
    kind = {400: "invalid_request_error", 404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error",
            429: "rate_limit_error", 501: "not_implemented_error"}.get(status, "server_error" if status >= 500 else "invalid_request_error")
    code = "model_not_found" if isinstance(exc, _NotFound) and getattr(exc, "param", None) == "model" else None
    return status, {"error": {"message": message, "type": kind, "param": getattr(exc, "param", None), "code": code}}


def error_body(exc: BaseException, model: str | None = None) -> tuple[int, bytes]:
    status, doc = error_object(exc, model)
    return status, v2_json.dumps(doc)


def _dumps(value: Any) -> bytes:
    if isinstance(value, pydantic.BaseModel):
        return v2_json.dumps(value.model_dump(mode="json"))
    return v2_json.dumps(value)


def _chunk(item: Any) -> bytes:
    if isinstance(item, (str, bytes)) and item.strip() in ("data: [DONE]", b"data: [DONE]"):
        return b""  # a KServe-style model ends its own stream; the route sends [DONE] once, last
    if isinstance(item, str):
        if item.startswith("data:"):
            return item.encode("utf-8")  # KServe-style: already framed
        return event(item.encode("utf-8"))
    if isinstance(item, bytes):
        return item if item.startswith(b"data:") else event(item)
    return event(_dumps(item))


def _error_event(exc: BaseException, model: str | None = None) -> bytes:
    return event(v2_json.dumps(error_object(exc, model)[1]))


async def _open(stream: ResponseStream, model: str) -> Any:
    from ..streaming import first_item

    try:
        has_first, first = await first_item(stream)
    except BaseException:
        await stream.aclose()
        raise
    return Streamed(stream, first, _chunk, _error_event, DONE, has_first=has_first, model=model)


def _empty() -> ResponseStream:
    """Nothing after the first item (which the route already has)."""

    async def run_inline(fn: Any, *args: Any) -> Any:
        return fn(*args)

    return ResponseStream(iter(()), run_inline)


def _allow(method: str, allowed: str) -> None:
    if method != allowed and not (allowed == "GET" and method == "HEAD"):
        raise MethodNotAllowed(method, allowed)

"""Streaming responses: one path for every door.

A hook (``predict`` or ``postprocess``) may return a generator or iterator, sync or async; each item
is one response. The data plane wraps it in a :class:`ResponseStream`, which the transports drain:
REST as server-sent events, gRPC as decoupled ``ModelStreamInfer`` responses, the OpenAI routes as
their chunks.

Items are pulled one at a time, when the sender asks for the next: nothing is produced ahead of a
slow reader (the socket's own flow control holds the sender), so memory stays bounded. A sync
generator's ``next`` runs in the hook threads, never on the event loop. Closing the stream (the
client went away, or cancelled) closes the generator at once: at most the item being produced when
the client left is made, and then the generator's ``finally`` blocks run.
"""

from __future__ import annotations

import contextvars
import inspect
import threading
from typing import Any, Awaitable, Callable

_END = object()

# Set while a request arrived on a streaming route (/infer_stream, /generate_stream, ModelStreamInfer),
# for models that answer differently then (an MLServer runtime's predict_stream).
stream_requested: contextvars.ContextVar[bool] = contextvars.ContextVar("stream_requested", default=False)


def is_stream(value: Any) -> bool:
    """Whether a hook's result is a stream of responses rather than one response."""
    if isinstance(value, (str, bytes, bytearray, dict, list, tuple)):
        return False
    return inspect.isasyncgen(value) or inspect.isgenerator(value) or hasattr(value, "__anext__") or hasattr(value, "__next__")


class ResponseStream:
    """An async iterator over a model's streamed items, mapped by ``convert``; always :meth:`aclose` it.

    ``streaming`` is false when the model answered with one plain response (a stream of one), so a
    transport can answer as it would without streaming.
    """

    def __init__(
        self,
        source: Any,
        run_in_thread: Callable[..., Awaitable[Any]],
        convert: Callable[[Any], Any] = lambda item: item,
        on_close: Callable[[BaseException | None], None] | None = None,
        headers: dict | None = None,
    ):
        self.streaming = is_stream(source)
        if not self.streaming:
            source = iter([source])
            self._sync = None  # a stream of one: no thread hop needed
        else:
            self._sync = not hasattr(source, "__anext__")
        self._source = source
        self._run = run_in_thread
        self._convert = convert
        self._on_close = on_close
        self._lock = threading.Lock()  # next() and close() of a sync generator never overlap
        self._closed = False
        self._error: BaseException | None = None
        self.headers = headers or {}
        self.produced = 0

    def __aiter__(self) -> ResponseStream:
        return self

    async def __anext__(self) -> Any:
        if self._closed:
            raise StopAsyncIteration
        try:
            if self._sync is None:
                item = next(self._source, _END)
            elif self._sync:
                item = await self._run(self._next_sync)
            else:
                try:
                    item = await self._source.__anext__()
                except StopAsyncIteration:
                    item = _END
            if item is _END:
                await self.aclose()
                raise StopAsyncIteration
            self.produced += 1
            return self._convert(item)
        except StopAsyncIteration:
            raise
        except BaseException as exc:
            self._error = exc
            await self.aclose()
            raise

    def _next_sync(self) -> Any:
        with self._lock:
            return next(self._source, _END)

    def _close_sync(self) -> None:
        with self._lock:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()

    async def aclose(self) -> None:
        """Stop the generator now and release the request; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._sync:
                await self._run(self._close_sync)
            elif self._sync is False:
                aclose = getattr(self._source, "aclose", None)
                if aclose is not None:
                    await aclose()
        finally:
            if self._on_close is not None:
                self._on_close(self._error)

    async def collect(self) -> list[Any]:
        """Every item (for a door that answers once)."""
        try:
            return [item async for item in self]
        finally:
            await self.aclose()


async def first_item(stream: ResponseStream) -> tuple[bool, Any]:
    """(True, item) or (False, None) when the stream is empty; errors before the first item raise.

    Transports pull the first item before they commit to a status, so a stream that fails at once
    still gets a plain 4xx/5xx answer."""
    try:
        return True, await stream.__anext__()
    except StopAsyncIteration:
        return False, None


__all__ = ["ResponseStream", "is_stream", "first_item", "stream_requested"]

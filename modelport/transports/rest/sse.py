"""Server-sent events: how the REST door sends a :class:`~modelport.streaming.ResponseStream`.

The route pulls the first item before the status is sent, so a stream that fails at once gets a
plain error answer. After that the status is 200 and a later failure arrives as an ``error`` event
(``data: {"error": ...}``, as Triton's generate_stream and MLServer send it). A disconnect (the
ASGI ``http.disconnect`` message) cancels the sender and closes the stream, which stops the model's
generator. ``send`` waits while the socket's write buffer is full, so a slow reader holds the
producer back instead of growing a buffer.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Callable

from ...errors import ModelportError, internal_error_message
from ...streaming import ResponseStream
from ...wire.v2_json import dumps

logger = logging.getLogger("modelport")

SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


class Streamed:
    """A route's answer that is a stream: the stream, its first item, and how to frame each item."""

    def __init__(
        self,
        stream: ResponseStream,
        first: Any,
        encode: Callable[[Any], bytes],
        encode_error: Callable[[BaseException, str | None], bytes] | None = None,
        done: bytes | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        has_first: bool = True,
        model: str | None = None,
    ):
        self.model = model
        self.stream = stream
        self.first = first
        self.has_first = has_first
        self.encode = encode
        self.encode_error = encode_error or default_error
        self.done = done
        self.headers = headers or []


def event(data: bytes, name: str | None = None) -> bytes:
    head = b"event: " + name.encode() + b"\n" if name else b""
    return head + b"data: " + data + b"\n\n"


def error_message(exc: BaseException, model: str | None = None) -> str:
    """A failure as a client may read it: a modelport error's reason; anything else is logged with a
    request id and answered without the server's insides (as every other route answers)."""
    if isinstance(exc, ModelportError):
        return exc.reason
    request_id = uuid.uuid4().hex[:16]
    logger.error("Stream of model %s failed after its first event (request id %s)", model, request_id, exc_info=exc)
    return internal_error_message(model, request_id)


def default_error(exc: BaseException, model: str | None = None) -> bytes:
    return event(dumps({"error": error_message(exc, model)}), "error")


async def send_stream(streamed: Streamed, receive: Callable, send: Callable, extra: list | tuple = ()) -> None:
    """Send the stream's events; ``extra``: headers every answer carries (the request edge's)."""
    await send({"type": "http.response.start", "status": 200, "headers": [*streamed.headers, *SSE_HEADERS, *extra]})
    pump = asyncio.ensure_future(_pump(streamed, send))
    watch = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        await asyncio.wait((pump, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pump, watch):
            if not task.done():
                task.cancel()
        await asyncio.gather(pump, watch, return_exceptions=True)
        await streamed.stream.aclose()  # stops the generator if the client left early


async def _pump(streamed: Streamed, send: Callable) -> None:
    stream = streamed.stream
    try:
        if streamed.has_first:
            await send({"type": "http.response.body", "body": streamed.encode(streamed.first), "more_body": True})
        async for item in stream:
            await send({"type": "http.response.body", "body": streamed.encode(item), "more_body": True})
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - after the status line an error can only be an event
        await send({"type": "http.response.body", "body": streamed.encode_error(exc, streamed.model), "more_body": True})
    await send({"type": "http.response.body", "body": streamed.done or b"", "more_body": False})


async def _wait_disconnect(receive: Callable) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return

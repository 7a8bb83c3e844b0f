"""The controls at the gRPC door: one server interceptor, composed by the server.

Each method is wrapped once, from its declared door (modelport/doors.py): the wrapper reads the model
name from the message field the door names and runs ``Controls.check`` before the handler. A method
no door declares answers UNIMPLEMENTED, whatever the key. ModelStreamInfer authenticates when the stream opens and
checks (and counts) each message as it is read; a refused message ends the stream with its status.
Errors raised here reach the error interceptor, which maps them like any other.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import grpc
import grpc.aio

from ..doors import GRPC_BY_METHOD, Door
from ..errors import Unimplemented
from ..transports.grpc.intercept import WrappingInterceptor
from .guard import Controls

def model_reader(door: Door) -> Callable[[Any], str | None]:
    """How the door's request message names its model (read from the declaration once per method)."""
    field = door.field
    if field is None:
        return lambda request: None

    def model(request: Any) -> str | None:
        name = getattr(request, field, None)
        return name if isinstance(name, str) and name else None  # empty: every model (an aggregate door)

    return model


def call_headers(context: grpc.aio.ServicerContext) -> dict[str, str]:
    return {
        k.lower(): v if isinstance(v, str) else v.decode("latin-1") for k, v in context.invocation_metadata() or ()
    }


def call_client(context: grpc.aio.ServicerContext) -> str | None:
    peer = context.peer() or ""  # "ipv4:127.0.0.1:5678", "ipv6:[::1]:5678"
    kind, _, rest = peer.partition(":")
    host = rest.rpartition(":")[0] if kind in ("ipv4", "ipv6") else rest
    return host.strip("[]") or None


class ControlsInterceptor(WrappingInterceptor):
    def __init__(self, controls: Controls):
        super().__init__()
        self.controls = controls

    def wrap(self, handler: Any, method: str) -> Any:
        door = GRPC_BY_METHOD.get(method)
        if door is None:  # deny by default: a method nobody declared is never served
            return _refuse(handler, method)
        return self._wrap(handler, door)

    def _wrap(self, handler: Any, door: Door) -> Any:
        check = self.controls.check
        model_of = model_reader(door)
        kind = next(k for k in _SHAPES if getattr(handler, k) is not None)
        fn = getattr(handler, kind)
        streamed_requests = kind.startswith("stream_")
        # The wrapper keeps the handler's style: an async generator, or a coroutine that writes with
        # context.write (grpc_health's Watch).
        if inspect.isasyncgenfunction(fn):

            async def wrapped_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                async for item in fn(_checked(request, context) if streamed_requests else _checked_one(request, context), context):
                    yield item

            wrapper: Any = wrapped_stream
        else:

            async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
                return await fn(_checked(request, context) if streamed_requests else _checked_one(request, context), context)

            wrapper = wrapped

        def _checked_one(request: Any, context: grpc.aio.ServicerContext) -> Any:
            check(door, model_of(request), call_headers(context), call_client(context))
            return request

        def _checked(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            # A stream authenticates when it opens, then each message is checked (and counted) as read.
            headers, client = call_headers(context), call_client(context)
            check(door, None, headers, client, count=False)

            async def each():
                async for request in requests:
                    check(door, model_of(request), headers, client)
                    yield request

            return each()

        return handler._replace(**{kind: wrapper})


_SHAPES = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


def _refuse(handler: Any, method: str) -> Any:
    """A handler of the same shape that answers UNIMPLEMENTED."""

    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> Any:
        raise Unimplemented(f"{method} is not a declared method of this server")

    async def refuse_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
        raise Unimplemented(f"{method} is not a declared method of this server")
        yield  # pragma: no cover - makes this an async generator

    if handler.unary_unary is not None:
        return handler._replace(unary_unary=refuse)
    if handler.unary_stream is not None:
        return handler._replace(unary_stream=refuse_stream)
    if handler.stream_stream is not None:
        return handler._replace(stream_stream=refuse_stream)
    return handler._replace(stream_unary=refuse)


__all__ = ["ControlsInterceptor", "call_client", "call_headers", "model_reader"]

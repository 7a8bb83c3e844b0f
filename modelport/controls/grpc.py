"""The controls at the gRPC door: the checks the door's one wrapper (transports/grpc/calls.py) runs
before each handler, composed by the composition root.

Each method's check is built once, from its declared door (modelport/doors.py): it reads the model
name from the message field the door names and runs ``Controls.check``. A method no door declares
answers UNIMPLEMENTED, whatever the key. ModelStreamInfer authenticates when the stream opens and
checks (and counts) each message as it is read; a refused message ends the stream with its status.
What the checks raise reaches the wrapper's error table, which maps it like any other error.
"""

from __future__ import annotations

from typing import Any, Callable

import grpc
import grpc.aio

from ..doors import GRPC_BY_METHOD, Door
from ..errors import Unimplemented
from .controls import Controls


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


class GrpcControls:
    """What runs before each method's handler, built once per method (the gRPC door's wrapper,
    transports/grpc/calls.py, asks when the server registers the method)."""

    def __init__(self, controls: Controls):
        self.controls = controls

    def _client(self, context: grpc.aio.ServicerContext) -> str | None:
        # The address only matters to the per-client rate limit: no peer() per call without one.
        return call_client(context) if self.controls.clients is not None else None

    def unary(self, method: str) -> Callable[[Any, grpc.aio.ServicerContext], None]:
        """``check(request, context)``: raises the refusal, or returns."""
        door = GRPC_BY_METHOD.get(method)
        if door is None:  # deny by default: a method nobody declared is never served
            return _refuse(method)
        check, model_of, client = self.controls.check, model_reader(door), self._client

        def checked_one(request: Any, context: grpc.aio.ServicerContext) -> None:
            check(door, model_of(request), call_headers(context), client(context))

        return checked_one

    def stream(self, method: str) -> Callable[[Any, grpc.aio.ServicerContext], Any]:
        """``checked(requests, context)``: the stream authenticates when it opens, then each message is
        checked (and counted) as it is read; a refused message ends the stream with its status."""
        door = GRPC_BY_METHOD.get(method)
        if door is None:
            return _refuse(method)
        check, model_of, client = self.controls.check, model_reader(door), self._client

        def checked(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            headers, address = call_headers(context), client(context)
            check(door, None, headers, address, count=False)

            async def each():
                async for request in requests:
                    check(door, model_of(request), headers, address)
                    yield request

            return each()

        return checked


def _refuse(method: str) -> Callable[[Any, grpc.aio.ServicerContext], Any]:
    def refuse(request: Any, context: grpc.aio.ServicerContext) -> Any:
        raise Unimplemented(f"{method} is not a declared method of this server")

    return refuse


__all__ = ["GrpcControls", "call_client", "call_headers", "model_reader"]

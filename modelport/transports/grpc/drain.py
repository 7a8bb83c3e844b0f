"""A lossless gRPC drain: count calls in flight, refuse new ones with UNAVAILABLE, then stop.

grpc's own ``stop(grace)`` cancels calls that reach the server within a few milliseconds after it
begins, and clients do not retry CANCELLED. So the server first refuses new calls with UNAVAILABLE
(which clients retry elsewhere), waits for the calls it has started to finish, keeps refusing for a
short window, and only then calls ``stop()``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import grpc
import grpc.aio

from .intercept import WrappingInterceptor

# Keep answering UNAVAILABLE this long after the last call finished, before grpc's stop().
REFUSE_WINDOW = 0.2
_HEALTH_PREFIX = "/grpc.health.v1.Health/"


class DrainInterceptor(WrappingInterceptor):
    """The outermost interceptor: tracks calls in flight and refuses new ones once draining."""

    def __init__(self) -> None:
        super().__init__()
        self.refusing = False
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def wrap(self, handler: Any, method: str) -> Any:
        if method.startswith(_HEALTH_PREFIX):
            return handler  # health checks answer NOT_SERVING during a drain; never refused
        return self._wrap(handler)

    async def wait_idle(self) -> None:
        await self._idle.wait()

    def _enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def _leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    def _wrap(self, handler: Any) -> Any:
        for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
            fn = getattr(handler, kind)
            if fn is not None:
                return handler._replace(**{kind: self._counted(fn)})
        return handler

    def _counted(self, fn: Callable) -> Callable:
        if inspect.isasyncgenfunction(fn):

            async def stream(request: Any, context: grpc.aio.ServicerContext):
                if self.refusing:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "Server is shutting down")
                self._enter()
                try:
                    async for item in fn(request, context):
                        yield item
                finally:
                    self._leave()

            return stream

        async def unary(request: Any, context: grpc.aio.ServicerContext):
            if self.refusing:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "Server is shutting down")
            self._enter()
            try:
                return await fn(request, context)
            finally:
                self._leave()

        return unary


async def drain_and_stop(server: grpc.aio.Server, interceptor: DrainInterceptor, grace: float) -> None:
    """Refuse new calls, let started ones finish within ``grace`` seconds, then stop the server."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    interceptor.refusing = True
    try:
        await asyncio.wait_for(interceptor.wait_idle(), timeout=max(0.0, grace))
    except asyncio.TimeoutError:
        pass
    if grace > 0:
        await asyncio.sleep(min(REFUSE_WINDOW, max(0.0, deadline - loop.time())))
    await server.stop(max(0.0, deadline - loop.time()))


__all__ = ["DrainInterceptor", "drain_and_stop"]

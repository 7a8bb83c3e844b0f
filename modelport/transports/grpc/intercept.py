"""The shape every server interceptor here shares: wrap a method's handler once, then reuse it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio


class WrappingInterceptor(grpc.aio.ServerInterceptor):
    """Handlers are fixed per method, so each is wrapped once (by :meth:`wrap`), not once per call."""

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = self._wrapped.get(details.method)
        if handler is None:
            handler = await continuation(details)
            if handler is None:  # unknown method: gRPC answers UNIMPLEMENTED
                return None
            handler = self._wrapped[details.method] = self.wrap(handler, details.method)
        return handler

    def wrap(self, handler: Any, method: str) -> Any:
        raise NotImplementedError


__all__ = ["WrappingInterceptor"]

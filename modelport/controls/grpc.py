"""The controls at the gRPC door: one server interceptor, composed by the server.

Each method is wrapped once: the wrapper reads the model name from the request message and runs
``Controls.check`` before the handler. ModelStreamInfer authenticates when the stream opens and
checks (and counts) each message as it is read; a refused message ends the stream with its status.
Errors raised here reach the error interceptor, which maps them like any other.
"""

from __future__ import annotations

from typing import Any

import grpc
import grpc.aio

from ..transports.grpc.intercept import WrappingInterceptor
from .guard import Controls

_SERVICE = "/inference.GRPCInferenceService/"
_KINDS = {
    "ServerLive": "health", "ServerReady": "health", "ModelReady": "health",
    "ServerMetadata": "metadata", "ModelMetadata": "metadata",
    "ModelInfer": "infer", "ModelStreamInfer": "infer",
    "RepositoryIndex": "repository", "RepositoryModelLoad": "repository", "RepositoryModelUnload": "repository",
}


def classify(method: str) -> str:
    if method.startswith("/grpc.health.v1.Health/"):
        return "health"
    if method.startswith(_SERVICE):
        return _KINDS.get(method[len(_SERVICE) :], "metadata")
    return "infer"


def _model(request: Any) -> str | None:
    name = getattr(request, "model_name", None) or getattr(request, "name", None)
    return name if isinstance(name, str) and name else None


def _headers(context: grpc.aio.ServicerContext) -> dict[str, str]:
    return {
        k.lower(): v if isinstance(v, str) else v.decode("latin-1") for k, v in context.invocation_metadata() or ()
    }


def _client(context: grpc.aio.ServicerContext) -> str | None:
    peer = context.peer() or ""  # "ipv4:127.0.0.1:5678", "ipv6:[::1]:5678"
    kind, _, rest = peer.partition(":")
    host = rest.rpartition(":")[0] if kind in ("ipv4", "ipv6") else rest
    return host.strip("[]") or None


class ControlsInterceptor(WrappingInterceptor):
    def __init__(self, controls: Controls):
        super().__init__()
        self.controls = controls

    def wrap(self, handler: Any, method: str) -> Any:
        return self._wrap(handler, classify(method))

    def _wrap(self, handler: Any, kind: str) -> Any:
        check = self.controls.check
        if handler.unary_unary is not None:
            fn = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                check(kind, _model(request), _headers(context), _client(context))
                return await fn(request, context)

            return handler._replace(unary_unary=unary)
        if handler.stream_stream is not None:
            fn = handler.stream_stream

            async def stream(requests: Any, context: grpc.aio.ServicerContext) -> Any:
                headers, client = _headers(context), _client(context)
                check(kind, None, headers, client, count=False)

                async def checked():
                    async for request in requests:
                        check(kind, _model(request), headers, client)
                        yield request

                async for item in fn(checked(), context):
                    yield item

            return handler._replace(stream_stream=stream)
        if handler.unary_stream is not None:
            fn = handler.unary_stream

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                check(kind, _model(request), _headers(context), _client(context))
                async for item in fn(request, context):
                    yield item

            return handler._replace(unary_stream=unary_stream)
        return handler


__all__ = ["ControlsInterceptor", "classify"]

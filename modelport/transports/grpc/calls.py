"""Every RPC's handler wrapped once, when the server registers it: the drain, the error table and
(when on) the controls, in one coroutine frame per call.

grpc.aio awaits each server interceptor's ``intercept_service`` on every call (a coroutine and a
``functools.partial`` per interceptor) and then each interceptor's own wrapper; the three we had (drain,
errors, controls) cost three such layers per call. Handlers are fixed per method, so this wraps them
at registration instead and the server has no interceptors at all.

What the wrapper does, outermost first:

- the drain: once the server drains, new calls answer UNAVAILABLE (clients retry those elsewhere);
  calls in flight are counted so that the drain waits for them (``drain.py``). Health checks are
  neither refused nor counted: they answer NOT_SERVING during a drain.
- the error table (``errors.py``): whatever a handler or the controls raise becomes its status.
- the controls (``modelport/controls/grpc.py``), given by the composition root: each method is checked
  as its declared door says; a method no door declares is refused whatever the key.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import grpc
import grpc.aio

from ...doors import GRPC_BY_METHOD
from ...errors import StartupError
from .errors import abort_with

_HEALTH_PREFIX = "/grpc.health.v1.Health/"
_KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


class CallGuard:
    """The one wrapper of every handler. ``checks`` (the controls, or None) gives, per method, what
    runs before its handler: ``checks.unary(method)`` -> ``check(request, context)`` raising a refusal,
    and ``checks.stream(method)`` -> ``checked(requests, context)``, an iterator of the checked requests."""

    def __init__(self, checks: Any = None):
        self.checks = checks
        self.refusing = False
        self.in_flight = 0
        self._idle: asyncio.Future | None = None  # made by wait_idle; set when the last call leaves
        self._wrapped: dict[str, Any] = {}

    # -- registration ----------------------------------------------------------------------------
    def register(self, server: grpc.aio.Server, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        """Add one service's handlers to ``server``, each wrapped. A method without a declared door
        (modelport/doors.py) stops the server from starting: deny by default.

        Generic handlers only, not grpc's "registered methods": for each registered method grpc.aio
        keeps a pending future and waits on all of them (asyncio.wait) once per call, so the server's
        17 methods cost every call about 5% of its instructions (bench/cpuprobe.py --callgrind:
        1.61 M against 1.53 M per [1,4] ModelInfer)."""
        undeclared = [f"/{service}/{name}" for name in handlers if f"/{service}/{name}" not in GRPC_BY_METHOD]
        if undeclared:
            raise StartupError(f"gRPC methods without a declared door (modelport/doors.py): {', '.join(undeclared)}")
        wrapped = {name: self.wrap(handler, f"/{service}/{name}") for name, handler in handlers.items()}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, wrapped),))

    def add_service(self, server: grpc.aio.Server, add_to_server: Callable[[Any, Any], None], servicer: Any) -> None:
        """Register a service through its generated ``add_XServicer_to_server(servicer, server)``, its
        handlers wrapped: the generated code hands them to a stand-in for the server first."""
        registrar = _Registrar()
        add_to_server(servicer, registrar)
        for service, handlers in registrar.registered:
            self.register(server, service, handlers)
        if not registrar.registered:  # older generated code: generic handlers only, wrapped on first look-up
            server.add_generic_rpc_handlers(tuple(_WrappedGeneric(self, h) for h in registrar.generic))

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        done = self._wrapped.get(method)
        if done is not None:
            return done
        kind = next(k for k in _KINDS if getattr(handler, k) is not None)
        fn = getattr(handler, kind)
        if not (inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)):
            # grpc.aio would run it in a thread pool, outside this wrapper's frame: refuse to start.
            raise StartupError(f"gRPC method {method}: its handler is not async; every handler here is")
        wrapped = handler._replace(**{kind: self._wrap_fn(fn, method, kind)})
        self._wrapped[method] = wrapped
        return wrapped

    def _wrap_fn(self, fn: Callable, method: str, kind: str) -> Callable:
        counted = not method.startswith(_HEALTH_PREFIX)
        streamed_requests = kind.startswith("stream_")
        check = checked = None
        if self.checks is not None:
            if streamed_requests:
                checked = self.checks.stream(method)
            else:
                check = self.checks.unary(method)
        guard = self

        if inspect.isasyncgenfunction(fn):  # answers by yielding (ModelStreamInfer)

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if counted:
                    await guard._enter(context)
                try:
                    if check is not None:
                        check(request, context)
                    async for item in fn(checked(request, context) if checked is not None else request, context):
                        yield item
                except grpc.aio.AbortError:  # the handler chose its status already
                    raise
                except Exception as exc:  # noqa: BLE001 - every failure becomes a status
                    await abort_with(context, exc, method)
                finally:
                    if counted:
                        guard._leave()

            return stream

        # A coroutine: a unary answer, or a stream written with context.write (grpc_health's Watch).
        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if counted:
                if guard.refusing:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "Server is shutting down")
                guard.in_flight += 1
            try:
                if check is not None:
                    check(request, context)
                return await fn(checked(request, context) if checked is not None else request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:  # noqa: BLE001
                await abort_with(context, exc, method, None if streamed_requests else request)
            finally:
                if counted:
                    guard._leave()

        return unary

    # -- the drain ---------------------------------------------------------------------------------
    async def _enter(self, context: grpc.aio.ServicerContext) -> None:
        if self.refusing:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "Server is shutting down")
        self.in_flight += 1

    def _leave(self) -> None:
        self.in_flight -= 1
        if not self.in_flight and self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    async def wait_idle(self) -> None:
        """Until no counted call is in flight."""
        if self.in_flight:
            if self._idle is None or self._idle.done():
                self._idle = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._idle)  # one waiter timing out leaves the future to the others


class _Registrar:
    """Stands in for the server in a generated ``add_XServicer_to_server``: collects what it adds."""

    def __init__(self) -> None:
        self.generic: list[grpc.GenericRpcHandler] = []
        self.registered: list[tuple[str, dict[str, grpc.RpcMethodHandler]]] = []

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self.generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self.registered.append((service, handlers))


class _WrappedGeneric(grpc.GenericRpcHandler):
    def __init__(self, guard: CallGuard, inner: grpc.GenericRpcHandler):
        self._guard = guard
        self._inner = inner

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = self._inner.service(details)
        return None if handler is None else self._guard.wrap(handler, details.method)


__all__ = ["CallGuard"]

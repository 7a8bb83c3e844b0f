"""A lossless gRPC drain: refuse new calls with UNAVAILABLE, wait for those in flight, then stop.

grpc's own ``stop(grace)`` cancels calls that reach the server within a few milliseconds after it
begins, and clients do not retry CANCELLED. So the server first refuses new calls with UNAVAILABLE
(which clients retry elsewhere), waits for the calls it has started to finish, keeps refusing for a
short window, and only then calls ``stop()``. The refusing and the counting are done by the one
wrapper of every handler (``calls.CallGuard``).
"""

from __future__ import annotations

import asyncio

import grpc.aio

from .calls import CallGuard

# Keep answering UNAVAILABLE this long after the last call finished, before grpc's stop().
REFUSE_WINDOW = 0.2


async def drain_and_stop(server: grpc.aio.Server, guard: CallGuard, grace: float) -> None:
    """Refuse new calls, let started ones finish within ``grace`` seconds, then stop the server."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    guard.refusing = True
    try:
        await asyncio.wait_for(guard.wait_idle(), timeout=max(0.0, grace))
    except asyncio.TimeoutError:
        pass
    if grace > 0:
        await asyncio.sleep(min(REFUSE_WINDOW, max(0.0, deadline - loop.time())))
    await server.stop(max(0.0, deadline - loop.time()))


__all__ = ["drain_and_stop"]

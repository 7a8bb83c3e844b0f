"""The hook threads: results and errors come back to the loop; threads are capped; shutdown stops them."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from modelport.execution.hook_threads import HookThreads


async def test_result_and_error_come_back():
    threads = HookThreads(2)
    assert await threads.run(lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(ZeroDivisionError):
        await threads.run(lambda: 1 / 0)
    assert await threads.run(threading.get_ident) != threading.get_ident()
    threads.shutdown()


async def test_threads_are_capped_and_run_in_parallel():
    threads = HookThreads(3)
    active, peak = 0, 0
    lock = threading.Lock()
    # Each call waits until three are running together: run one at a time, they would break the barrier.
    together = threading.Barrier(3, timeout=30)

    def work():
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        together.wait()
        with lock:
            active -= 1

    await asyncio.gather(*(threads.run(work) for _ in range(9)))
    assert peak == 3 and len(threads._threads) == 3 and not together.broken
    threads.shutdown()


async def test_a_cancelled_caller_is_skipped():
    threads = HookThreads(1)
    ran = []
    blocker = asyncio.ensure_future(threads.run(time.sleep, 0.1))
    await asyncio.sleep(0.01)
    doomed = asyncio.ensure_future(threads.run(ran.append, "doomed"))
    await asyncio.sleep(0)
    doomed.cancel()
    await blocker
    await threads.run(ran.append, "kept")
    assert ran == ["kept"]
    threads.shutdown()


async def test_shutdown_stops_threads_and_refuses_work():
    threads = HookThreads(2)
    await asyncio.gather(threads.run(time.sleep, 0.05), threads.run(time.sleep, 0.05))
    threads.shutdown()
    for t in threads._threads:
        t.join(2)
        assert not t.is_alive()
    with pytest.raises(RuntimeError, match="shut down"):
        await threads.run(print)

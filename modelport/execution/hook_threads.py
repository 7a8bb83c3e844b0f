"""The threads that run sync model hooks, so they never block the event loop.

A lean stand-in for ``loop.run_in_executor(ThreadPoolExecutor)`` on the request path: the loop puts
(callable, asyncio future) on a C-implemented queue and a worker thread hands the outcome back with
one ``call_soon_threadsafe``. No concurrent.futures.Future, no future chaining: on a [1,4] iris
request that machinery was about a tenth of the server's CPU time.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from typing import Any, Callable

_STOP = object()


def _deliver(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class HookThreads:
    def __init__(self, max_threads: int, name: str = "modelport-hook", copy_context: bool = False):
        self.max_threads = max_threads
        # Run each hook in a copy of the caller's context (tracing needs the request's span there);
        # off by default: it costs a context copy per call.
        self.copy_context = copy_context
        self.name = name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._closed = False

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in a worker thread; its result or exception, awaited on the calling loop."""
        if self._closed:
            raise RuntimeError("the hook threads are shut down")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self.copy_context:
            fn, args = contextvars.copy_context().run, (fn, *args)
        self._queue.put((fn, args, future, loop))
        # More work waiting than threads idle: add one (up to the cap).
        if self._queue.qsize() > self._idle and len(self._threads) < self.max_threads:
            self._start_thread()
        return await future

    def _start_thread(self) -> None:
        with self._lock:
            if len(self._threads) >= self.max_threads:
                return
            thread = threading.Thread(target=self._work, name=f"{self.name}_{len(self._threads)}", daemon=True)
            self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        get = self._queue.get
        lock = self._lock
        while True:
            with lock:
                self._idle += 1  # run() reads it unlocked: a hint for starting threads
            item = get()
            with lock:
                self._idle -= 1
            if item is _STOP:
                return
            fn, args, future, loop = item
            if future.cancelled():
                continue
            try:
                result, error = fn(*args), None
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller
                result, error = None, exc
            # Let go of the hook before the caller resumes: a model's stop hook must not keep the model
            # alive past its eviction (residency.py checks that it is freed then).
            del item, fn, args
            try:
                loop.call_soon_threadsafe(_deliver, future, result, error)
            except RuntimeError:
                pass  # the loop is closed: nobody is waiting any more
            del future, result, error

    def shutdown(self) -> None:
        """Let queued work finish, then stop every thread (without waiting for them)."""
        self._closed = True
        for _ in self._threads:
            self._queue.put(_STOP)

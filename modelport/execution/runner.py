"""How one model executes.

The runner looks at the model's hooks once, when the model loads: ``async def`` hooks are awaited on
the event loop; ``def`` hooks run in a thread pool so they never block the loop, unless the chain has
proved it finishes within the model's loop budget (``loop_budget.py``). Hooks the model does not
override are skipped, and a chain of sync hooks crosses into the pool once per request, not once per
hook. Stage latencies go to the metrics.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from typing import Any, Awaitable, Callable

from .hook_threads import HookThreads
from .loop_budget import LoopBudget, needs_own_loop, request_size
from ..model import Model
from ..wire.v1_json import check_request

STAGES = ("preprocess", "predict", "postprocess")
logger = logging.getLogger("modelport")


class _Hook:
    """One bound hook, inspected once."""

    __slots__ = ("stage", "fn", "is_async", "takes_headers", "takes_response_headers", "validates")

    def __init__(self, stage: str, fn: Callable[..., Any]):
        self.stage = stage
        self.fn = fn
        # KServe's Model.validate: what reaches predict/explain (after preprocess) is checked once.
        self.validates = stage in ("predict", "explain")
        self.is_async = inspect.iscoroutinefunction(fn)
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            params = {}
        self.takes_headers = "headers" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
        self.takes_response_headers = "response_headers" in params

    def call(self, value: Any, headers: dict | None, response_headers: dict) -> Any:
        if self.validates and type(value) is dict:
            check_request(value)
        if self.takes_response_headers:
            if self.takes_headers:
                return self.fn(value, headers=headers, response_headers=response_headers)
            return self.fn(value, response_headers=response_headers)
        if self.takes_headers:
            return self.fn(value, headers=headers)
        return self.fn(value)


_worker_loop: asyncio.AbstractEventLoop | None = None


def call_sync(fn: Callable[[], Any]) -> Any:
    """Call a hook where no event loop runs (a worker process); an async hook gets a private loop."""
    global _worker_loop
    result = fn()
    if inspect.isawaitable(result):
        if _worker_loop is None:
            _worker_loop = asyncio.new_event_loop()
        result = _worker_loop.run_until_complete(result)
    return result


def _overridden(model: Any, name: str) -> bool:
    method = getattr(type(model), name, None)
    return method is not None and method is not getattr(Model, name, None)


class ModelRunner:
    """Runs a model's request hooks; the data plane calls :meth:`infer` and :meth:`explain`."""

    def __init__(
        self,
        model: Model,
        threads: HookThreads | None = None,
        observe: Callable[[str, float], None] | None = None,
        max_batch_size: int = 0,
        max_batch_time: float = 0.0,
        observe_batch: Callable[[int, list], None] | None = None,
        pool: Any = None,
        pool_stages: tuple[str, ...] = ("predict",),
        loop_budget: float = 0.0,
    ):
        self.model = model
        self.threads = threads
        # observe(stage, seconds) records a stage latency; a no-op when metrics are off.
        self._observe = observe or (lambda stage, seconds: None)
        stages = ["predict"] + [s for s in ("preprocess", "postprocess") if _overridden(model, s)]
        self._chain = [_Hook(s, getattr(model, s)) for s in STAGES if s in stages]
        self._all_sync = not any(h.is_async for h in self._chain)
        self._explain = _Hook("explain", model.explain)
        # A runtime may answer a request it can prove cheap on the loop itself (predict_inline returns
        # NotImplemented otherwise): no thread hand-off. Only a lone sync predict, in-process.
        inline = getattr(model, "predict_inline", None)
        self._inline = inline if callable(inline) and pool is None and len(self._chain) == 1 and self._all_sync else None
        # A sync chain that reliably finishes within loop_budget seconds runs on the loop (loop_budget.py).
        self._budget = LoopBudget(loop_budget) if loop_budget > 0 and self._all_sync and pool is None else None
        # With a process pool, the chain splits into hooks before the pool, the pooled ones, and after.
        self.pool = pool
        if pool is not None:
            names = [h.stage for h in self._chain]
            pooled = [i for i, n in enumerate(names) if n in pool_stages]
            self._before = self._chain[: pooled[0]]
            self._pooled = tuple(names[pooled[0] : pooled[-1] + 1])
            self._after = self._chain[pooled[-1] + 1 :]
        # Set by the composition root: the model's statistics recorder and payload logger (or None).
        self.stats: Any = None
        self.payload_log: Any = None
        self.batcher = None
        if max_batch_size > 1:
            from .batching import AdaptiveBatcher

            self.batcher = AdaptiveBatcher(self._infer_direct, model.name, max_batch_size, max_batch_time, observe_batch)

    # -- lifecycle -----------------------------------------------------------------------------
    async def load(self) -> bool:
        if self.pool is not None:
            await self.pool.start()  # each worker loads its own copy; raises why if one cannot
            self.model.ready = True
            return True
        result = await self._call_plain(self.model.load)
        # KServe models return a bool from load() or set self.ready; honour either.
        if result is True and not self.model.ready:
            self.model.ready = True
        return bool(self.model.ready)

    async def stop(self) -> None:
        if self.batcher is not None:
            await self.batcher.close()
        if self.payload_log is not None:
            await self.payload_log.close()  # send what is queued (briefly), then stop its sender
        predictor = getattr(self.model, "_predictor", None)  # a transformer's link to its predictor
        if predictor is not None:
            await predictor.close()
        if self.pool is not None:
            await self.pool.stop()
            return
        await self._call_plain(self.model.stop)
        unload = getattr(self.model, "unload", None)  # MLServer's name for the same hook
        if callable(unload):
            await self._call_plain(unload)

    def in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` off the loop (a streamed sync generator's ``next`` goes this way)."""
        return self._in_thread(fn, *args)

    def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """An awaitable of ``fn(*args)`` run off the loop (the server's hook threads, else asyncio's default pool)."""
        if self.threads is not None:
            return self.threads.run(fn, *args)
        return asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def _call_plain(self, fn: Callable[[], Any]) -> Any:
        if inspect.iscoroutinefunction(fn):
            return await fn()
        result = await self._in_thread(fn)
        if inspect.isawaitable(result):
            result = await result
        return result

    # -- requests ------------------------------------------------------------------------------
    def infer(self, payload: Any, headers: dict | None = None) -> Awaitable[tuple[Any, dict]]:
        """preprocess → predict → postprocess: an awaitable of the result and the response headers the
        hooks set. The batcher's or the direct coroutine itself, not wrapped in one more per request."""
        if self.batcher is not None:
            return self.batcher.infer(payload, headers)
        return self._infer_direct(payload, headers)

    async def _infer_direct(self, payload: Any, headers: dict | None = None) -> tuple[Any, dict]:
        response_headers: dict[str, str] = {}
        if self.pool is not None:
            return await self._infer_pooled(payload, headers, response_headers), response_headers
        if self._inline is not None:
            if type(payload) is dict:
                check_request(payload)
            start = time.perf_counter()
            result = self._inline(payload)
            if result is not NotImplemented:
                self._observe("predict", time.perf_counter() - start)
                return result, response_headers
        if self._all_sync:
            if self._budget is None or self._budget.disabled:
                result = await self._in_thread(self._run_sync_chain, payload, headers, response_headers)
            else:
                result = await self._run_sync_within_budget(payload, headers, response_headers)
        else:
            result = payload
            for hook in self._chain:
                result = await self._run_hook(hook, result, headers, response_headers)
        return result, response_headers

    async def _infer_pooled(self, value: Any, headers: dict | None, response_headers: dict) -> Any:
        for hook in self._before:
            value = await self._run_hook(hook, value, headers, response_headers)
        start = time.perf_counter()
        value, pooled_headers = await self.pool.run(self._pooled, value, headers)
        response_headers.update(pooled_headers)
        self._observe(self._pooled[-1], time.perf_counter() - start)
        for hook in self._after:
            value = await self._run_hook(hook, value, headers, response_headers)
        return value

    async def explain(self, payload: Any, headers: dict | None = None) -> tuple[Any, dict]:
        response_headers: dict[str, str] = {}
        result = await self._run_hook(self._explain, payload, headers, response_headers)
        return result, response_headers

    async def _run_sync_within_budget(self, payload: Any, headers: dict | None, response_headers: dict) -> Any:
        budget, size = self._budget, request_size(payload)
        if budget.fits(size):
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                result = self._run_sync_chain(payload, headers, response_headers)
            except RuntimeError as exc:
                if not needs_own_loop(exc):
                    raise
                # The hook starts an event loop of its own (asyncio.run): it can only run in a thread.
                logger.info("Model %s: its sync hooks run their own event loop; they stay in threads", self.model.name)
                budget.never()
                return await self._in_thread(self._run_sync_chain, payload, headers, response_headers)
            seconds = time.perf_counter() - start
            budget.record(seconds, size, True, time.thread_time() - cpu if seconds > budget.budget else None)
            return result
        result, seconds, cpu = await self._in_thread(self._run_sync_chain_timed, payload, headers, response_headers)
        budget.record(seconds, size, False, cpu)
        return result

    def _run_sync_chain_timed(
        self, value: Any, headers: dict | None, response_headers: dict
    ) -> tuple[Any, float, float | None]:
        """The result, the wall time and, when that is over the budget, the thread's CPU time (loop_budget.py)."""
        start, cpu = time.perf_counter(), time.thread_time()
        value = self._run_sync_chain(value, headers, response_headers)
        seconds = time.perf_counter() - start
        return value, seconds, time.thread_time() - cpu if seconds > self._budget.budget else None

    def _run_sync_chain(self, value: Any, headers: dict | None, response_headers: dict) -> Any:
        observe = self._observe
        for hook in self._chain:
            start = time.perf_counter()
            value = hook.call(value, headers, response_headers)
            observe(hook.stage, time.perf_counter() - start)
        return value

    async def _run_hook(self, hook: _Hook, value: Any, headers: dict | None, response_headers: dict) -> Any:
        start = time.perf_counter()
        if hook.is_async:
            result = await hook.call(value, headers, response_headers)
        else:
            result = await self._in_thread(hook.call, value, headers, response_headers)
            if inspect.isawaitable(result):
                result = await result
        self._observe(hook.stage, time.perf_counter() - start)
        return result

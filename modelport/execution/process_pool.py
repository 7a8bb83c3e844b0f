"""Inference worker processes for CPU-bound models.

Each worker process builds and loads its own copy of the model (from its model settings, or from a
pickled, not-yet-loaded instance for models built in code) and runs the pooled stages there, so the
event loop keeps answering while models compute. Tensors cross the process boundary pickled as numpy
buffers, never element by element. A worker that dies fails only the requests it held, with a clear
503 (or retries them once elsewhere for an idempotent model), and is replaced alone.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import pickle
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ..errors import InferenceError, public_reason

logger = logging.getLogger("modelport")

# -- inside a worker process -------------------------------------------------------------------
_model: Any = None
_hooks: dict[str, Any] = {}
_load_error: str | None = None


def _init_worker(spec: tuple[str, Any]) -> None:
    global _model, _load_error
    try:
        kind, value = spec
        if kind == "settings":
            from ..repository.entries import build_model

            model = build_model(value)
        else:
            model = pickle.loads(value)
        from .runner import _Hook, call_sync

        ready = call_sync(model.load)
        if ready is True:
            model.ready = True
        if not model.ready:
            raise RuntimeError("load() returned without making the model ready")
        _model = model
        for stage in ("preprocess", "predict", "postprocess"):
            _hooks[stage] = _Hook(stage, getattr(model, stage))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent by _ping
        _load_error = f"{type(exc).__name__}: {exc}"


def _ping(delay: float) -> str | None:
    time.sleep(delay)  # keeps this worker busy so the next ping lands on another one
    return _load_error


def _run(stages: tuple[str, ...], value: Any, headers: dict | None) -> tuple[Any, dict]:
    from .runner import call_sync

    if _load_error is not None:
        raise InferenceError(f"Model failed to load in its worker process: {public_reason(_load_error)}", status=503)
    response_headers: dict[str, str] = {}
    for stage in stages:
        hook = _hooks[stage]
        value = call_sync(lambda: hook.call(value, headers, response_headers))
    return value, response_headers


# -- in the server process ---------------------------------------------------------------------
class _Slot:
    """One worker process (a one-process executor), so that its death breaks only its own requests."""

    def __init__(self) -> None:
        self.executor: ProcessPoolExecutor | None = None
        self.in_flight = 0
        self.restarting: asyncio.Task | None = None


class InferencePool:
    """``workers`` processes that each hold a loaded copy of one model.

    Each process is its own executor: when one dies, only the requests it was running fail (or, for a
    model marked ``idempotent``, are retried once on a healthy process); the others go on, new
    requests go to the healthy ones, and the dead one is replaced in the background.
    """

    def __init__(self, model_name: str, workers: int, spec: tuple[str, Any], retry_on_crash: bool = False):
        self.model_name = model_name
        self.workers = workers
        self.retry_on_crash = retry_on_crash
        self._spec = spec
        self._slots = [_Slot() for _ in range(workers)]
        self._healthy = asyncio.Event()
        self._stopped = False

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker, initargs=(self._spec,)
        )

    async def _start_slot(self, slot: _Slot) -> None:
        """Start one worker and wait until it has loaded the model, or raise why it could not."""
        executor = self._new_executor()
        try:
            error = await asyncio.get_running_loop().run_in_executor(executor, _ping, 0.0)
        except BrokenProcessPool as exc:
            executor.shutdown(wait=False, cancel_futures=True)
            raise RuntimeError(f"inference workers of model {self.model_name} died while loading") from exc
        if error:
            executor.shutdown(wait=False, cancel_futures=True)
            raise RuntimeError(f"model failed to load in its worker process: {error}")
        slot.executor = executor
        self._healthy.set()

    async def start(self) -> None:
        """Start every worker and wait until each has loaded the model, or raise why it could not."""
        self._stopped = False
        results = await asyncio.gather(*(self._start_slot(slot) for slot in self._slots), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            await self.stop()
            raise failed[0]

    def _pick(self) -> _Slot | None:
        healthy = [slot for slot in self._slots if slot.executor is not None]
        return min(healthy, key=lambda slot: slot.in_flight) if healthy else None

    async def run(self, stages: tuple[str, ...], value: Any, headers: dict | None) -> tuple[Any, dict]:
        attempts = 2 if self.retry_on_crash else 1
        for attempt in range(attempts):
            slot = self._pick()
            while slot is None:  # every worker is being replaced: wait for one
                if self._stopped or not any(s.restarting for s in self._slots):
                    raise InferenceError(f"Model {self.model_name} has no running inference workers", status=503)
                self._healthy.clear()
                await self._healthy.wait()
                slot = self._pick()
            executor = slot.executor
            slot.in_flight += 1
            try:
                return await asyncio.get_running_loop().run_in_executor(executor, _run, stages, value, headers)
            except BrokenProcessPool:
                self._replace(slot, executor)
            finally:
                slot.in_flight -= 1
            if attempt + 1 < attempts:
                logger.warning("An inference worker of model %s died; retrying the request on another", self.model_name)
        raise InferenceError(
            f"The inference worker running this request for model {self.model_name} crashed; retry the request",
            status=503,
        )

    def _replace(self, slot: _Slot, broken: ProcessPoolExecutor) -> None:
        if slot.executor is not broken:
            return  # another request of the same worker already saw it die
        logger.error("An inference worker of model %s died; replacing it", self.model_name)
        slot.executor = None
        broken.shutdown(wait=False, cancel_futures=True)
        slot.restarting = asyncio.ensure_future(self._restart(slot))

    async def _restart(self, slot: _Slot) -> None:
        try:
            await self._start_slot(slot)
        except Exception:  # noqa: BLE001
            logger.exception("Could not restart an inference worker of model %s", self.model_name)
        finally:
            slot.restarting = None
            self._healthy.set()  # wake waiters: a worker is back, or they must give up

    async def stop(self) -> None:
        self._stopped = True
        executors = [slot.executor for slot in self._slots if slot.executor is not None]
        for slot in self._slots:
            slot.executor = None
            if slot.restarting is not None:
                slot.restarting.cancel()
        self._healthy.set()
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(None, e.shutdown, True) for e in executors))


def pool_spec(model: Any, settings: Any) -> tuple[str, Any]:
    """How a worker process gets its own copy of the model: from settings, or pickled before load."""
    if settings is not None and (settings.implementation or settings.uri):
        return ("settings", settings)
    try:
        return ("pickle", pickle.dumps(model))
    except Exception as exc:
        raise RuntimeError(
            f"Model {model.name} runs in worker processes but cannot be pickled ({exc}); "
            "serve it from a model-settings.json folder or make it picklable before load()"
        ) from exc

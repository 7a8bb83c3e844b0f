"""Inference worker processes for CPU-bound models.

Each worker process builds and loads its own copy of the model (from its model settings, or from a
pickled, not-yet-loaded instance for models built in code) and runs the pooled stages there, so the
event loop keeps answering while models compute. Tensors cross the process boundary pickled as numpy
buffers, never element by element. A worker that dies fails the requests it held with a clear 503 and
the pool is replaced.
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

from .errors import InferenceError, public_reason

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
            from .repository import build_model

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
class InferencePool:
    """``workers`` processes that each hold a loaded copy of one model."""

    def __init__(self, model_name: str, workers: int, spec: tuple[str, Any]):
        self.model_name = model_name
        self.workers = workers
        self._spec = spec
        self._executor: ProcessPoolExecutor | None = None
        self._replacing: asyncio.Lock | None = None

    async def start(self) -> None:
        """Start every worker and wait until each has loaded the model, or raise why it could not."""
        self._executor = ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker, initargs=(self._spec,)
        )
        loop = asyncio.get_running_loop()
        try:
            errors = await asyncio.gather(*(loop.run_in_executor(self._executor, _ping, 0.2) for _ in range(self.workers)))
        except BrokenProcessPool as exc:
            self._executor.shutdown(wait=False, cancel_futures=True)
            raise RuntimeError(f"inference workers of model {self.model_name} died while loading") from exc
        failed = [e for e in errors if e]
        if failed:
            self._executor.shutdown(wait=False, cancel_futures=True)
            raise RuntimeError(f"model failed to load in its worker process: {failed[0]}")

    async def run(self, stages: tuple[str, ...], value: Any, headers: dict | None) -> tuple[Any, dict]:
        executor = self._executor
        if executor is None:
            raise InferenceError(f"Model {self.model_name} has no running inference workers", status=503)
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, _run, stages, value, headers)
        except BrokenProcessPool:
            logger.error("An inference worker of model %s died; replacing the pool", self.model_name)
            await self._replace(executor)
            raise InferenceError(
                f"The inference worker running this request for model {self.model_name} crashed; retry the request",
                status=503,
            ) from None

    async def _replace(self, broken: ProcessPoolExecutor) -> None:
        if self._replacing is None:
            self._replacing = asyncio.Lock()
        async with self._replacing:
            if self._executor is not broken:
                return  # another request already replaced it
            broken.shutdown(wait=False, cancel_futures=True)
            self._executor = None
            try:
                await self.start()
            except Exception:  # noqa: BLE001
                logger.exception("Could not restart the inference workers of model %s", self.model_name)
                self._executor = None

    async def stop(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown, True)


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

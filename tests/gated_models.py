"""Models that stay inside ``predict`` until the test lets them go: "answered while the model was busy"
becomes an ordering the test controls, not a time it measures."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from modelport import Model, get_predict_response

HOLD_LIMIT = 60  # a model never holds longer than this, so a failing test cannot hang the run


class GatedModel(Model):
    """Sync ``predict`` (in the thread pool) that waits for ``release``; ``active`` counts callers inside."""

    def __init__(self, name="gated"):
        super().__init__(name)
        self.ready = True
        self.active = 0
        self.release = threading.Event()
        self._lock = threading.Lock()

    def predict(self, payload, headers=None):
        with self._lock:
            self.active += 1
        try:
            self.release.wait(HOLD_LIMIT)
        finally:
            with self._lock:
                self.active -= 1
        return get_predict_response(payload, np.array([1.0], dtype=np.float32), self.name)


class AsyncGatedModel(Model):
    """Async ``predict`` that waits until ``open_at`` callers are inside together (or ``release()``)."""

    def __init__(self, name="agated", open_at: int | None = None):
        super().__init__(name)
        self.ready = True
        self.open_at = open_at
        self.active = 0
        self.max_active = 0
        self._open: asyncio.Event | None = None

    def _gate(self) -> asyncio.Event:
        if self._open is None:  # made on the server's loop
            self._open = asyncio.Event()
        return self._open

    def release(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        gate = self._gate()
        if loop is None:
            gate.set()
        else:
            loop.call_soon_threadsafe(gate.set)

    async def predict(self, payload, headers=None):
        gate = self._gate()
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        if self.open_at is not None and self.active >= self.open_at:
            gate.set()
        try:
            await asyncio.wait_for(gate.wait(), HOLD_LIMIT)
        finally:
            self.active -= 1
        return get_predict_response(payload, np.array([1.0], dtype=np.float32), self.name)

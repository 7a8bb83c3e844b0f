"""Streaming fixture models: sync and async generators, failures mid-stream, a counter of produced items."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np

from modelport import InferOutput, InferRequest, InferResponse, Model


def _count(payload) -> int:
    if isinstance(payload, InferRequest):
        tensor = payload.get_input_by_name("n")
        if tensor is not None:
            return int(tensor.as_numpy().ravel()[0])
        return int(payload.parameters.get("n", 3))
    if isinstance(payload, dict):
        return int((payload.get("instances") or [3])[0])
    return 3


def _response(name, i):
    out = InferOutput("i", [1], "INT64")
    out.set_data_from_numpy(np.array([i], dtype=np.int64), binary_data=False)
    return InferResponse(None, name, [out])


class SyncCounter(Model):
    """A sync generator: yields n responses (V2) or dicts (V1); counts what it produced; delay between items."""

    def __init__(self, name="counter", delay=0.0, fail_at=None):
        super().__init__(name)
        self.ready = True
        self.delay = delay
        self.fail_at = fail_at
        self.produced = 0
        self.closed = threading.Event()
        self.threads = set()

    def predict(self, payload, headers=None):
        n = _count(payload)
        v2 = isinstance(payload, InferRequest)
        try:
            for i in range(n):
                self.threads.add(threading.current_thread().name)
                if self.fail_at is not None and i == self.fail_at:
                    raise ValueError(f"broke at item {i}")
                if self.delay:
                    time.sleep(self.delay)
                self.produced += 1
                yield _response(self.name, i) if v2 else {"i": i}
        finally:
            self.closed.set()


class AsyncTokens(Model):
    """An async generator of text chunks (str items become a text_output BYTES response)."""

    def __init__(self, name="tokens", delay=0.0, fail_at=None):
        super().__init__(name)
        self.ready = True
        self.delay = delay
        self.fail_at = fail_at
        self.produced = 0
        self.closed = asyncio.Event()

    async def predict(self, payload, headers=None):
        if isinstance(payload, InferRequest):
            tensor = payload.get_input_by_name("text_input")
            text = tensor.as_numpy().ravel()[0].decode() if tensor is not None else "a b c"
            count = int(payload.parameters.get("max_tokens", len(text.split())))
        else:
            text = payload.get("text", "a b c")
            count = len(text.split())
        words = (text.split() * (count // max(1, len(text.split())) + 1))[:count]
        try:
            for i, word in enumerate(words):
                if self.fail_at is not None and i == self.fail_at:
                    raise ValueError(f"broke at token {i}")
                if self.delay:
                    await asyncio.sleep(self.delay)
                self.produced += 1
                yield word + " "
        finally:
            self.closed.set()


class WrappingPostprocess(Model):
    """predict returns one value; postprocess turns it into a stream (postprocess may stream too)."""

    def __init__(self, name="wrapped"):
        super().__init__(name)
        self.ready = True

    def predict(self, payload, headers=None):
        return 3

    def postprocess(self, result, headers=None):
        return iter([{"part": k} for k in range(result)])

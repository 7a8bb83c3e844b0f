"""Large V2 JSON bodies are decoded in a helper process, so the event loop keeps answering.

JSON parsing and building numpy arrays from parsed lists hold the GIL, so a thread does not help:
measured on a 62 MB body, health checks stalled as long with a thread as on the loop itself. A
separate process decodes while the loop serves; the request comes back pickled, with its tensors as
numpy buffers (a fraction of the JSON's size). Bodies below the threshold are decoded in place,
where a round trip would cost more than it saves.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ...wire import v2_json


def _warm() -> None:
    return None


class DecodeOffload:
    def __init__(self, threshold: int):
        self.threshold = threshold  # bytes; 0: never
        self._executor: ProcessPoolExecutor | None = None

    def wants(self, body: bytes) -> bool:
        return 0 < self.threshold <= len(body)

    async def decode_request(self, body: bytes, *args: Any) -> Any:
        if self._executor is None:
            # One process, started when the first large body comes: most servers never need it.
            self._executor = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        executor = self._executor
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, v2_json.decode_request, body, *args)
        except BrokenProcessPool:
            if self._executor is executor:
                self._executor = None
            executor.shutdown(wait=False, cancel_futures=True)
            return v2_json.decode_request(body, *args)  # the helper died (e.g. out of memory): decode here

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown, True)


__all__ = ["DecodeOffload"]

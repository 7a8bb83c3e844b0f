"""Adaptive batching, composed in front of a runner (no patching of the model).

Requests queue per model. A batch closes when it holds ``max_batch_size`` rows, when ``max_batch_time``
has passed since its first request, or when requests stop arriving, whichever comes first; while the
model is busy with one batch the next one fills, so the batch size adapts to the load and a lone
request does not wait. Only requests of the same *shape signature*
(input names, datatypes, trailing dimensions and parameters; for V1, plain ``instances`` lists) are
merged, so nothing that cannot be merged ever is; the rest run in batches of their own kind. Each
caller gets exactly its own rows back. A model whose outputs do not have one row per input row
cannot be split: every caller of that batch gets a clear error, never someone else's rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable

import numpy as np

from ..errors import InferenceError
from ..predict_io import outputs_from_result
from ..types import InferInput, InferOutput, InferRequest, InferResponse

logger = logging.getLogger("modelport")

# Loop turns without a new request after which a batch stops waiting for more.
_QUIET_TURNS = 3

Infer = Callable[[Any, "dict | None"], Awaitable[tuple[Any, dict]]]


class _Pending:
    __slots__ = ("payload", "headers", "rows", "future", "queued_at")

    def __init__(self, payload: Any, headers: dict | None, rows: int, future: asyncio.Future):
        self.payload = payload
        self.headers = headers
        self.rows = rows
        self.future = future
        self.queued_at = time.perf_counter()


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def signature(payload: Any) -> tuple | None:
    """What must be equal for two requests to share a batch; None when a request cannot be batched."""
    if isinstance(payload, InferRequest):
        if not payload.inputs:
            return None
        parts = []
        rows = None
        for t in payload.inputs:
            shape = t.shape
            if not shape:
                return None
            if rows is None:
                rows = shape[0]
            elif shape[0] != rows:
                return None  # inputs disagree on the batch dimension: nothing to split on
            params = {k: v for k, v in t.parameters.items() if k not in ("binary_data", "binary_data_size")}
            parts.append((t.name, t.datatype, tuple(shape[1:]), _freeze(params)))
        request_params = {k: v for k, v in payload.parameters.items() if k != "binary_data_output"}
        return ("v2", tuple(parts), _freeze(request_params))
    if isinstance(payload, dict) and set(payload) == {"instances"} and isinstance(payload["instances"], list):
        return ("v1",)
    return None


def _rows(payload: Any) -> int:
    if isinstance(payload, InferRequest):
        return payload.inputs[0].shape[0]
    return len(payload["instances"])


class AdaptiveBatcher:
    def __init__(
        self,
        infer: Infer,
        model_name: str,
        max_batch_size: int,
        max_batch_time: float,
        observe_batch: Callable[[int, list], None] | None = None,
    ):
        self._infer = infer
        self.model_name = model_name
        self.max_batch_size = max_batch_size
        self.max_batch_time = max_batch_time
        self._observe = observe_batch or (lambda size, queued: None)
        self._queues: OrderedDict[tuple, list[_Pending]] = OrderedDict()
        self._wakeup: asyncio.Event | None = None
        self._last_rows = 1  # rows in the last batch: how many callers seem to be active
        self._task: asyncio.Task | None = None

    async def infer(self, payload: Any, headers: dict | None = None) -> tuple[Any, dict]:
        key = signature(payload)
        rows = _rows(payload) if key is not None else 0
        if key is None or rows >= self.max_batch_size:
            return await self._infer(payload, headers)
        loop = asyncio.get_running_loop()
        pending = _Pending(payload, headers, rows, loop.create_future())
        self._queues.setdefault(key, []).append(pending)
        if self._task is None or self._task.done():
            self._wakeup = asyncio.Event()
            self._task = loop.create_task(self._collect())
        self._wakeup.set()
        return await pending.future

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for queue in self._queues.values():
            for p in queue:
                if not p.future.done():
                    p.future.set_exception(InferenceError("Model unloaded before the batch ran", status=503))
        self._queues.clear()

    # -- the collector: one task per model, alive while requests keep coming -----------------------
    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queues:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=5.0)
                except asyncio.TimeoutError:
                    if not self._queues:
                        return  # idle: the next request starts a new collector
                    continue
            key, queue = next(iter(self._queues.items()))
            await self._fill(queue, queue[0].queued_at + self.max_batch_time)
            batch = self._take(key)
            if batch:
                await self._run(batch, loop)

    async def _fill(self, queue: list[_Pending], deadline: float) -> None:
        """Let a batch grow, within its time budget, as long as that is likely to pay.

        The last batch's size estimates how many callers are active: wait (for arrivals) until the
        batch is that big, then only while requests keep coming, a few loop turns at most. A lone
        caller never waits out the budget; steady callers fill each batch; growing load grows it.
        """
        target = min(self.max_batch_size, self._last_rows)
        quiet = 0
        while (rows := sum(p.rows for p in queue)) < self.max_batch_size:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            if rows < target:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=remaining)
                except asyncio.TimeoutError:
                    break
                continue
            if quiet >= _QUIET_TURNS:
                break
            before = len(queue)
            await asyncio.sleep(0)
            quiet = 0 if len(queue) > before else quiet + 1

    def _take(self, key: tuple) -> list[_Pending]:
        queue = self._queues.get(key, [])
        batch, rows = [], 0
        while queue and rows + queue[0].rows <= self.max_batch_size:
            item = queue.pop(0)
            if item.future.done():  # the caller gave up (deadline, disconnect)
                continue
            batch.append(item)
            rows += item.rows
        self._last_rows = max(rows, 1)
        if not queue:
            self._queues.pop(key, None)
        else:
            self._queues.move_to_end(key)  # fairness between signatures
        return batch

    async def _run(self, batch: list[_Pending], loop: asyncio.AbstractEventLoop) -> None:
        now = time.perf_counter()
        self._observe(len(batch), [now - p.queued_at for p in batch])
        if len(batch) == 1:
            merged = batch[0].payload
        else:
            merged = _merge([p.payload for p in batch])
        try:
            result, response_headers = await self._infer(merged, batch[0].headers)
            parts = [result] if len(batch) == 1 else _split(result, [p.rows for p in batch], self.model_name)
        except BaseException as exc:  # noqa: BLE001 - handed to every caller of this batch
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for p, part in zip(batch, parts):
            if not p.future.done():
                p.future.set_result((_for_caller(part, p.payload), dict(response_headers)))


def _merge(payloads: list[Any]) -> Any:
    first = payloads[0]
    if isinstance(first, dict):
        return {"instances": [row for p in payloads for row in p["instances"]]}
    inputs = []
    for i, t in enumerate(first.inputs):
        arrays = [p.inputs[i].as_numpy() for p in payloads]
        merged = np.concatenate(arrays, axis=0)
        params = {k: v for k, v in t.parameters.items() if k not in ("binary_data", "binary_data_size")}
        inputs.append(InferInput(t.name, list(merged.shape), t.datatype, merged, params))
    return InferRequest(first.model_name, inputs, None, parameters=dict(first.parameters), model_version=first.model_version)


def _split(result: Any, rows: list[int], model_name: str) -> list[Any]:
    total = sum(rows)
    bounds = np.cumsum([0] + rows)
    if isinstance(result, dict):
        predictions = result.get("predictions")
        if not isinstance(predictions, list) or len(predictions) != total:
            raise InferenceError(
                f"Model {model_name} returned {len(predictions) if isinstance(predictions, list) else 'no'} "
                f"predictions for a batch of {total} instances; cannot give each caller its own rows"
            )
        extra = {k: v for k, v in result.items() if k != "predictions"}
        return [{**extra, "predictions": predictions[a:b]} for a, b in zip(bounds[:-1], bounds[1:])]
    if isinstance(result, InferResponse):
        outputs = result.outputs
    else:
        outputs = outputs_from_result(result)
    arrays = []
    for out in outputs:
        array = out.as_numpy()
        if array.ndim == 0 or array.shape[0] != total:
            raise InferenceError(
                f"Model {model_name} returned output {out.name!r} with shape {list(array.shape)} for a batch of "
                f"{total} rows; batched outputs need one row per input row"
            )
        arrays.append((out, array))
    parts = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        tensors = []
        for out, array in arrays:
            piece = array[a:b]
            tensors.append(InferOutput(out.name, list(piece.shape), out.datatype, piece, dict(out.parameters)))
        params = dict(result.parameters) if isinstance(result, InferResponse) else {}
        parts.append(InferResponse(None, model_name, tensors, parameters=params))
    return parts


def _for_caller(part: Any, payload: Any) -> Any:
    if isinstance(part, InferResponse) and isinstance(payload, InferRequest):
        part.id = payload.id
        part.model_version = payload.model_version
    return part

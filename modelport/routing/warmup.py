"""Model warmup (Triton's ``model_warmup``): sample requests run after ``load()`` and before the model
is marked ready, so the first real request is not the slow one.

``warmup`` in model-settings is a list of V2 request bodies (``{"inputs": [...]}``), or
``{"count": N}`` to send N requests generated from the declared inputs (zeros; -1 dims become 1).
The requests go through the model's runner (batcher, worker processes and all); a failing warmup
fails the load.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..errors import InvalidInput
from ..types import InferInput, InferRequest, to_np_dtype

logger = logging.getLogger("modelport")


def warmup_requests(name: str, spec: Any, inputs: list[dict]) -> list[InferRequest]:
    if not spec:
        return []
    if isinstance(spec, dict):
        count = spec.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise InvalidInput(f"Model {name}: warmup count must be a positive integer")
        if not inputs:
            raise InvalidInput(f"Model {name}: warmup {{\"count\": N}} needs declared inputs to generate requests from")
        return [_generated(name, inputs) for _ in range(count)]
    from ..wire.v2_json import decode_request, dumps

    return [decode_request(dumps(body), name, None, None) for body in spec]


def _generated(name: str, inputs: list[dict]) -> InferRequest:
    tensors = []
    for spec in inputs:
        shape = [d if d > 0 else 1 for d in spec.get("shape") or [1]]
        datatype = spec.get("datatype", "FP32")
        dtype = to_np_dtype(datatype)
        array = np.full(shape, b"", dtype=object) if dtype.kind == "O" else np.zeros(shape, dtype=dtype)
        tensors.append(InferInput(spec["name"], shape, datatype, array))
    return InferRequest(name, tensors)


async def run_warmup(entry: Any) -> None:
    settings = entry.settings or getattr(entry.model, "settings", None)
    spec = getattr(settings, "warmup", None) or getattr(entry.model, "warmup", None)
    requests = warmup_requests(entry.name, spec, entry.model.inputs or getattr(settings, "inputs", None) or [])
    for request in requests:
        request.model_version = entry.version
        await entry.runner.infer(request, {})
    if requests:
        logger.info("Model %s: %d warmup request(s) done", entry.name, len(requests))

"""A model that answers after exactly 20 ms, for checking `modelport bench`'s statistics (served as a folder)."""

from __future__ import annotations

import asyncio

import numpy as np

from modelport import InferOutput, InferResponse, Model

DELAY = 0.020


class Sleeper(Model):
    """Sleeps on the loop, so concurrency is not capped by the hook threads."""

    def __init__(self, name="sleeper"):
        super().__init__(name)
        self.inputs = [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}]
        self.ready = True

    async def predict(self, payload, headers=None):
        await asyncio.sleep(DELAY)
        if isinstance(payload, dict):  # V1
            return {"predictions": [sum(row) for row in payload["instances"]]}
        x = payload.inputs[0].as_numpy()
        out = InferOutput("y", [x.shape[0]], "FP32")
        out.set_data_from_numpy(x.sum(axis=1).astype(np.float32), binary_data=False)
        return InferResponse(payload.id, self.name, [out])

"""Models for the routing tests: each answers with a value that names its version."""

from __future__ import annotations

import asyncio

import numpy as np

from modelport import InferOutput, InferRequest, InferResponse, Model
from modelport.settings import ModelSettings

X = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1.0, 2.0]}]}


class Versioned(Model):
    """Answers y = sum(x) * scale (V2) or {"predictions": [scale]} (V1); optionally slow or failing."""

    def __init__(self, name="m", version="1", scale=1.0, delay=0.0, fail=False, load_delay=0.0, settings=None):
        super().__init__(name)
        self.version = version
        self.scale = scale
        self.delay = delay
        self.fail = fail
        self.load_delay = load_delay
        self.settings = settings
        self.calls = 0
        # Events a test opens to let load() or predict() go on (instead of timing with sleeps).
        self.load_gate: asyncio.Event | None = None
        self.gate: asyncio.Event | None = None

    async def load(self):
        if self.load_delay:
            await asyncio.sleep(self.load_delay)
        if self.load_gate is not None:
            await self.load_gate.wait()
        self.ready = True
        return True

    async def predict(self, payload, headers=None):
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError(f"version {self.version} is broken")
        if not isinstance(payload, InferRequest):
            return {"predictions": [self.scale]}
        x = payload.inputs[0].as_numpy()
        y = np.asarray(x, dtype=np.float32).sum(axis=-1) * self.scale
        out = InferOutput("y", list(y.shape), "FP32")
        out.set_data_from_numpy(y.astype(np.float32), binary_data=False)
        return InferResponse(payload.id, self.name, [out])


def versions(name="m", scales=None, **kwargs):
    return [Versioned(name, str(v), scale=s, **kwargs) for v, s in (scales or {"1": 1.0, "2": 2.0}).items()]


def with_settings(model, **fields):
    model.settings = ModelSettings(name=model.name, **fields)
    model.settings.parameters.version = model.version
    return model

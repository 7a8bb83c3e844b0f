"""MLServer peer for the worker-pool health scenario: mlserver-sklearn's runtime, burning CPU first.

model-settings.json: ``"implementation": "mlserver_burn.BurnSKLearnModel"`` with
``"parameters": {"uri": "...", "extra": {"burn_ms": 50}}``; bench/peers must be on PYTHONPATH.
With ``parallel_workers`` >= 1 (MLServer's default) predict runs in MLServer's worker processes.
"""

import time

from mlserver_sklearn import SKLearnModel


def burn_cpu(ms: float) -> None:
    end = time.thread_time() + ms / 1000.0
    while time.thread_time() < end:
        pass


class BurnSKLearnModel(SKLearnModel):
    async def load(self) -> bool:
        extra = (self.settings.parameters.extra or {}) if self.settings.parameters else {}
        self._burn_ms = float(extra.get("burn_ms", 50))
        return await super().load()

    async def predict(self, payload):
        burn_cpu(self._burn_ms)
        return await super().predict(payload)

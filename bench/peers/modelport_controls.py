"""A model for bench/controls.py: the bundled iris classifier, burning ``parameters.extra.burn_ms`` of CPU per call."""

import time

from modelport.examples.iris import IrisClassifier


class BurnIris(IrisClassifier):
    def load(self) -> bool:
        extra = getattr(getattr(self.settings, "parameters", None), "extra", None) or {}
        self.burn_ms = float(extra.get("burn_ms", 5))
        return super().load()

    def predict(self, payload, headers=None):
        end = time.thread_time() + self.burn_ms / 1000.0
        while time.thread_time() < end:  # CPU time, not wall time: the cost a real model would have
            pass
        return super().predict(payload, headers)

"""modelport models for the benchmark: the iris LogisticRegression, and a variant burning CPU.

model-settings.json names them as ``modelport_iris.IrisModel`` / ``modelport_iris.BurnIrisModel`` /
``modelport_iris.StubIrisModel`` (bench/models/iris-stub: no scikit-learn, the server's cost alone);
the harness puts bench/peers on PYTHONPATH. The model file comes from $BENCH_IRIS_JOBLIB
(default bench/.work/iris.joblib). The code is what a KServe user would write, imports changed.
"""

import os
import time
from pathlib import Path

import joblib
import numpy as np

from modelport import Model, get_predict_input, get_predict_response

DEFAULT_JOBLIB = Path(__file__).resolve().parents[1] / ".work" / "iris.joblib"


class IrisModel(Model):
    def load(self) -> bool:
        self.clf = joblib.load(os.environ.get("BENCH_IRIS_JOBLIB", str(DEFAULT_JOBLIB)))
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        x = get_predict_input(payload)
        return get_predict_response(payload, self.clf.predict(x), self.name)


class StubIrisModel(IrisModel):
    """The same class with a constant answer instead of scikit-learn: what the server costs around a model."""

    def predict(self, payload, headers=None):
        x = get_predict_input(payload)
        return get_predict_response(payload, STUB_ANSWER[: len(x)], self.name)


STUB_ANSWER = np.zeros(1024, dtype=np.int64)


def burn_cpu(ms: float) -> None:
    """Spin for `ms` milliseconds of this thread's CPU time (not wall time)."""
    end = time.thread_time() + ms / 1000.0
    while time.thread_time() < end:
        pass


class BurnIrisModel(IrisModel):
    """Burns ``parameters.extra.burn_ms`` (default 50) ms of CPU per call, then predicts."""

    def load(self) -> bool:
        extra = getattr(getattr(self.settings, "parameters", None), "extra", None) or {}
        self.burn_ms = float(extra.get("burn_ms", 50))
        return super().load()

    def predict(self, payload, headers=None):
        burn_cpu(self.burn_ms)
        return super().predict(payload, headers)

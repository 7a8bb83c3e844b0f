"""KServe peer: the iris LogisticRegression as a custom ``kserve.Model``.

Run inside bench/.venvs/kserve:

    python bench/peers/kserve_iris.py --http_port P --grpc_port G [--burn_ms 50] [kserve ModelServer flags]

It answers V1 (``{"instances": ...}``) and V2 (``InferRequest``, REST and gRPC) through
kserve's own ``get_predict_input``/``get_predict_response`` helpers, as a KServe user would write it.
``--burn_ms N`` makes every call burn N ms of CPU first (the worker-pool health scenario).
The model file comes from $BENCH_IRIS_JOBLIB (default bench/.work/iris.joblib).
"""

import argparse
import os
import time
from pathlib import Path

import joblib
import kserve
from kserve.utils.utils import get_predict_input, get_predict_response

DEFAULT_JOBLIB = Path(__file__).resolve().parents[1] / ".work" / "iris.joblib"


def burn_cpu(ms: float) -> None:
    """Spin for `ms` milliseconds of this thread's CPU time (not wall time)."""
    end = time.thread_time() + ms / 1000.0
    while time.thread_time() < end:
        pass


class IrisModel(kserve.Model):
    def __init__(self, name: str, burn_ms: float = 0.0):
        super().__init__(name)
        self.burn_ms = burn_ms
        self.clf = None

    def load(self) -> bool:
        self.clf = joblib.load(os.environ.get("BENCH_IRIS_JOBLIB", str(DEFAULT_JOBLIB)))
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        if self.burn_ms:
            burn_cpu(self.burn_ms)
        x = get_predict_input(payload)
        return get_predict_response(payload, self.clf.predict(x), self.name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--burn_ms", type=float, default=0.0)
    args, _ = parser.parse_known_args()
    model = IrisModel(args.model_name if args.model_name != "model" else "iris", burn_ms=args.burn_ms)
    model.load()
    kserve.ModelServer().start([model])

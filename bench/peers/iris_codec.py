"""The V1/V2 JSON work every Python-native peer (LitServe, BentoML, Ray Serve) does around `predict`.

Kept in one place so the three peers differ only in the framework around it. Plain ``json``-shaped
dicts in and out; the frameworks serialize the answer themselves. The answer has the shape of
KServe's and modelport's: ``{"model_name", "id", "outputs": [{"name": "output-0", "datatype",
"shape", "data"}]}`` for V2 and ``{"predictions": [...]}`` for V1.
"""

import os
import uuid
from pathlib import Path

import joblib
import numpy as np

MODEL = "iris"
DEFAULT_JOBLIB = Path(__file__).resolve().parents[1] / ".work" / "iris.joblib"


def load_model():
    return joblib.load(os.environ.get("BENCH_IRIS_JOBLIB", str(DEFAULT_JOBLIB)))


def v2_input(request: dict) -> np.ndarray:
    inp = request["inputs"][0]
    return np.asarray(inp["data"], dtype=np.float32).reshape(inp["shape"])


def v2_output(y: np.ndarray, request_id: str | None = None) -> dict:
    datatype = "INT64" if y.dtype.kind == "i" else "FP64" if y.dtype.itemsize == 8 else "FP32"
    return {"model_name": MODEL, "id": request_id or str(uuid.uuid4()),
            "outputs": [{"name": "output-0", "datatype": datatype, "shape": list(y.shape), "data": y.ravel().tolist()}]}


def v1_input(request: dict) -> np.ndarray:
    return np.asarray(request["instances"], dtype=np.float32)


def v1_output(y: np.ndarray) -> dict:
    return {"predictions": y.tolist()}

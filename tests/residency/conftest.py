"""Model folders for the residency tests: many tiny sklearn models, and models whose load is slow,
fails on demand, or holds a known number of bytes."""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

import numpy as np
import pytest

SIZED_PY = '''
import asyncio
import os
import time

import numpy as np
from modelport import InferOutput, InferResponse, Model


class Sized(Model):
    """Holds `size` bytes; its load takes `load_delay` s and fails while the file `broken` exists;
    predict sleeps `delay` s. Loads are counted per test folder (tests/residency/counters.py)."""

    def load(self):
        from tests.residency.counters import COUNTERS

        extra = self.settings.parameters.extra
        counter = COUNTERS[os.path.dirname(self.settings.folder)]
        counter.begin()
        ok = False
        try:
            time.sleep(extra.get("load_delay", 0))
            if os.path.exists(os.path.join(self.settings.folder, "broken")):
                raise RuntimeError("weights are corrupt")
            self.weights = np.ones(extra.get("size", 1000), dtype=np.uint8)
            ok = True
        finally:
            counter.end(ok)
        self.ready = True
        return True

    def memory_bytes(self):
        """The model's own figure when its settings declare one (0: let the server measure)."""
        return self.settings.parameters.extra.get("declared", 0)

    async def predict(self, payload, headers=None):
        await asyncio.sleep(self.settings.parameters.extra.get("delay", 0))
        x = payload.inputs[0].as_numpy().astype(np.float32)
        out = InferOutput("y", [x.shape[0]], "FP32")
        out.set_data_from_numpy(x.sum(axis=-1) + float(self.weights[0]), binary_data=False)
        return InferResponse(payload.id, self.name, [out])
'''


@pytest.fixture(scope="session")
def iris_bytes() -> bytes:
    joblib = pytest.importorskip("joblib")
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    buf = io.BytesIO()
    joblib.dump(LogisticRegression(max_iter=300).fit(X, y), buf)
    return buf.getvalue()


def sklearn_folder(root: Path, iris: bytes, count: int, prefix: str = "m", **extra) -> Path:
    for i in range(count):
        folder = root / f"{prefix}{i}"
        folder.mkdir(parents=True)
        (folder / "model.joblib").write_bytes(iris)
        (folder / "model-settings.json").write_text(json.dumps(
            {"name": f"{prefix}{i}", "implementation": "sklearn", "parameters": {"uri": "./model.joblib"}, **extra}))
    return root


def counter(root: Path):
    from .counters import COUNTERS

    return COUNTERS[str(root)]


def sized_model(root: Path, name: str, pinned: bool = False, **extra) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sized.py").write_text(SIZED_PY)
    settings = {"name": name, "implementation": "sized.Sized", "parameters": {"extra": extra}}
    if pinned:
        settings["pinned"] = True
    (folder / "model-settings.json").write_text(json.dumps(settings))
    return folder


IRIS_ROW = [[5.1, 3.5, 1.4, 0.2]]


def v2_body(rows=IRIS_ROW) -> dict:
    return {"inputs": [{"name": "input-0", "shape": [len(rows), 4], "datatype": "FP64", "data": rows}]}


def index_of(server) -> dict:
    return {m["name"]: m for m in server.dataplane.repository_index()}


async def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def metric(text: str, sample: str) -> float:
    """One sample of /metrics by its exact name and labels, e.g. 'modelport_model_loads_total{result="ok"}'."""
    for line in text.splitlines():
        if line.split(" ")[0] == sample:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{sample} not in /metrics")


def xgboost_model(root: Path, name: str) -> Path:
    """An iris XGBoost classifier (20 rounds) saved as model.json in ``root/name``."""
    xgboost = pytest.importorskip("xgboost")
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    folder = root / name
    folder.mkdir(parents=True)
    xgboost.XGBClassifier(n_estimators=20, max_depth=3).fit(X, y).save_model(folder / "model.json")
    (folder / "model-settings.json").write_text(json.dumps({"name": name, "implementation": "xgboost"}))
    return folder


def malloc_in_use() -> int | None:
    """Bytes the C allocator has handed out and not had back (every arena, mmapped blocks included):
    what native libraries hold, which tracemalloc does not see. None without glibc's mallinfo2."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = MallInfo2
    info = mallinfo2()
    return info.uordblks + info.hblkhd

"""Helpers for the Ray tests: a model folder, a small local Ray cluster on loopback, closed-loop load."""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import joblib
import pytest

# Every Ray test module's marks: Ray starts slowly, and its own imports warn about its dependencies.
RAY_TEST_MARKS = [
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

IRIS_ROW = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [6.7, 3.0, 5.2, 2.3]}]}
SLOW_MODEL = '''
import asyncio
import time
from modelport import Model

class Slow(Model):
    def predict(self, payload, headers=None):
        time.sleep(0.05)
        return {"predictions": [len(payload["instances"])]}


class Waits(Model):
    """Waits on I/O (20 ms) without holding the event loop: throughput is concurrency, not CPU."""

    async def predict(self, payload, headers=None):
        await asyncio.sleep(0.02)
        return {"predictions": [len(payload["instances"])]}


class Batched(Model):
    """Answers each row with the size of the batch it was predicted in, after a preprocess that doubles it."""

    def preprocess(self, payload, headers=None):
        return {"instances": [[v * 2 for v in row] for row in payload["instances"]]}

    def predict(self, payload, headers=None):
        time.sleep(0.02)
        rows = payload["instances"]
        return {"predictions": [[row[0], len(rows)] for row in rows]}
'''


def free_port() -> int:
    """Ray's proxies take a port number, not a bound socket: the one place we bind, close and reuse."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def temp_dir(prefix: str) -> str:
    """A short, unique Ray temp dir (Ray's socket paths must stay under 107 characters)."""
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp")


def make_folder(folder: Path, models: tuple[str, ...] = ("iris", "slow", "batched")) -> Path:
    if "iris" in models:
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression

        (folder / "iris").mkdir(parents=True)
        x, y = load_iris(return_X_y=True)
        joblib.dump(LogisticRegression(max_iter=500).fit(x, y), folder / "iris" / "model.joblib")
        (folder / "iris" / "model-settings.json").write_text(json.dumps({"name": "iris", "implementation": "sklearn"}))
    extra = {"batched": {"max_batch_size": 8, "max_batch_time": 0.2}}
    for name, cls in (("slow", "Slow"), ("batched", "Batched"), ("waits", "Waits")):
        if name in models:
            (folder / name).mkdir(parents=True)
            (folder / name / "slow_model.py").write_text(SLOW_MODEL)
            (folder / name / "model-settings.json").write_text(json.dumps({
                "name": name, "implementation": f"slow_model.{cls}", **extra.get(name, {})}))
    return folder


def load(url: str, body: dict, seconds: float, workers: int, path: str = "/v2/models/iris/infer",
         headers: dict | None = None, samples: list | None = None) -> Counter:
    """Closed-loop load from ``workers`` threads; counts answers by status (0: no answer). With
    ``samples``, appends (time, status) per answer."""
    counts: Counter = Counter()
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def work() -> None:
        with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
            while time.monotonic() < stop:
                try:
                    status = client.post(path, json=body).status_code
                except httpx.TransportError:
                    status = 0
                with lock:
                    counts[status] += 1
                    if samples is not None:
                        samples.append((time.monotonic(), status))

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts

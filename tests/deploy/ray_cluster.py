"""Helpers for the Ray tests: a model folder, a small local Ray cluster on loopback, closed-loop load."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import httpx
import joblib
import pytest

from ..ports import unused_port

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
    """Answers each row with the size of the batch it was predicted in, after a preprocess that doubles it.

    Batching adapts: the next batch fills while the model is busy. The first call on a replica stays busy
    for 2 s, so requests sent at the same time queue behind it and share the next call however slowly a
    loaded machine delivers them."""

    first = True

    def preprocess(self, payload, headers=None):
        return {"instances": [[v * 2 for v in row] for row in payload["instances"]]}

    def predict(self, payload, headers=None):
        time.sleep(2.0 if Batched.first else 0.02)
        Batched.first = False
        rows = payload["instances"]
        return {"predictions": [[row[0], len(rows)] for row in rows]}
'''


def temp_dir(prefix: str) -> str:
    """A short, unique Ray temp dir (Ray's socket paths must stay under 107 characters)."""
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp")


RAY = str(Path(sys.executable).with_name("ray"))
# Our nodes use Ray's token auth (its default for a new cluster). A driver reads the mode once, when Ray
# is imported, so it is set here: every Ray test module imports this one before Ray.
os.environ["RAY_AUTH_MODE"] = "token"
# `ray start` under token auth refuses to start without a token, and only a local ray.init() writes one
# (~/.ray/auth_token): on a machine where nothing did, no node starts. The run's own token, inherited by
# every node, driver and `modelport serve --ray` the tests start.
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc), deepest last."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def stop_server(server: subprocess.Popen | None) -> None:
    """End a `modelport serve --ray` started in its own session: SIGTERM (it shuts Serve down), then the group."""
    if server is None or server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(10)


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.25)


class RayNode:
    """One `ray start --block` and everything under it, in its own process group and temp dir.

    Every Ray test starts its nodes this way rather than with a local ``ray.init()``: that forks the
    Ray daemons from the pytest process with a ``preexec_fn``, and a fork of a process with many
    threads (the suite's earlier servers and clients) can hang in the child before exec, so the raylet
    never starts. A node started here is also ended exactly (never `ray stop`, which would end every
    Ray on the machine); the test connects as a driver with ``ray.init(address=node.address)``.
    """

    def __init__(self, name: str, args: list[str], num_cpus: int = 1):
        self.dir = temp_dir(f"mp{name}")
        self.log = open(Path(self.dir) / "start.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [RAY, "start", "--block", "--node-ip-address=127.0.0.1", f"--temp-dir={self.dir}", f"--num-cpus={num_cpus}",
             "--disable-usage-stats", *args],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            # Multi-node on one host: Ray refuses a second node when this is "0" (it means "single node only").
            # Token auth on every node: RAY_AUTH_MODE, set below for this process, is inherited.
            # The head's proxy spreads requests over both nodes (by default it keeps them on its own node's replica).
            env={**{k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"},
                 "RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING": "0"},
        )
        self.seen: set[int] = set()

    @classmethod
    def head(cls, name: str, num_cpus: int = 2, extra: tuple[str, ...] = ()) -> "RayNode":
        """A head node, waited for until its raylet runs; ``address`` is its GCS address."""
        port = unused_port()
        node = cls(name, ["--head", f"--port={port}", "--include-dashboard=false", *extra], num_cpus)
        node.address = f"127.0.0.1:{port}"
        try:
            wait_for(lambda: node.raylet() is not None or node.proc.poll() is not None, 60, f"{name}: no raylet")
            assert node.proc.poll() is None, f"{name}: `ray start` ended: {node.output()}"
        except BaseException:
            node.stop()
            raise
        return node

    def output(self) -> str:
        self.log.flush()
        return (Path(self.dir) / "start.log").read_text(errors="replace")[-4000:]

    def raylet(self) -> int | None:
        pids = _children(self.proc.pid)
        self.seen.update(pids)
        return next((p for p in pids if comm(p) == "raylet"), None)

    def processes(self, prefix: str) -> int:
        return sum(comm(pid).startswith(prefix) for pid in _children(self.proc.pid))

    def stop(self) -> None:
        self.seen.update(_children(self.proc.pid) if self.proc.poll() is None else [])
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            for pid in self.seen:  # anything that left the group (Ray daemons may)
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                continue
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def driver(node: RayNode):
    """This test process as a Ray driver of ``node``'s cluster; Serve is shut down after."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import ray
        from ray import serve

    ray.init(address=node.address, logging_level="warning", log_to_driver=False)
    try:
        yield
    finally:
        serve.shutdown()
        ray.shutdown()


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
    """Closed-loop load from ``workers`` threads; counts answers by status (0: the connection closed with
    no answer, -1: no answer within the client's 30 s, a hang). With ``samples``, appends (time, status)
    per answer."""
    counts: Counter = Counter()
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def work() -> None:
        with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
            while time.monotonic() < stop:
                try:
                    status = client.post(path, json=body).status_code
                except httpx.TimeoutException:
                    status = -1
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

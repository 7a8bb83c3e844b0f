"""`modelport serve --workers N`: several processes share the ports; a dead one is replaced."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import httpx

from .serving import BAD_SIGNS, LOOPBACK, wait_ready


def worker_pids(parent: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def pids_answering(url: str, n: int = 60) -> set[int]:
    seen = set()
    for _ in range(n):
        with httpx.Client() as client:  # a new connection each time, so the kernel spreads them
            r = client.post(url + "/v1/models/pid:predict", json={"instances": [[1.0]]})
            assert r.status_code == 200, r.text
            seen.add(r.json()["predictions"][0])
    return seen


def test_workers_share_the_port_and_are_replaced(served, tmp_path):
    (tmp_path / "pid").mkdir()
    (tmp_path / "pid" / "model-settings.json").write_text(json.dumps({"name": "pid", "implementation": "tests.fixture_models.PidModel"}))
    s = served(str(tmp_path), *LOOPBACK, "--workers", "2")
    url = s.http_url()
    wait_ready(url)
    deadline = time.monotonic() + 20
    while len(worker_pids(s.proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    children = worker_pids(s.proc.pid)
    assert len(children) == 2
    seen = pids_answering(url)
    assert seen <= children and len(seen) == 2, (seen, children)

    victim = next(iter(children))
    os.kill(victim, signal.SIGKILL)
    s.wait_for("starting a new one")
    deadline = time.monotonic() + 20
    while (len(worker_pids(s.proc.pid)) < 2 or victim in worker_pids(s.proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    replacement = worker_pids(s.proc.pid) - children
    assert len(replacement) == 1
    wait_ready(url)
    deadline = time.monotonic() + 20
    while not (replacement <= pids_answering(url, 20)) and time.monotonic() < deadline:
        pass
    assert s.stop() == 0
    assert not any(bad in s.output for bad in BAD_SIGNS), s.output


def test_a_worker_that_cannot_start_stops_everything(served, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model-settings.json").write_text(json.dumps({"name": "m", "implementation": "nowhere.Model"}))
    s = served(str(tmp_path), *LOOPBACK, "--workers", "2")
    assert s.proc.wait(30) != 0
    s._reader.join(5)
    assert "nowhere" in s.output


def test_no_worker_says_ready_while_a_sibling_still_loads(served, tmp_path):
    """Every worker listens while it loads (liveness), so "ready" from one worker must wait for all:
    else a client that saw ready gets 503 "loading" from the worker the kernel hands it (issue: drain
    test's stray 503s)."""
    (tmp_path / "m" / "sum").mkdir(parents=True)
    (tmp_path / "m" / "sum" / "model-settings.json").write_text(
        json.dumps({"name": "sum", "implementation": "tests.fixture_models.GatedSumModel"})
    )
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    env = {"GATED_LOAD_FIFO": str(gate), "GATED_LOAD_CLAIM": str(tmp_path / "claim")}
    s = served(str(tmp_path / "m"), *LOOPBACK, "--workers", "2", env=env)
    url = s.http_url()
    body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}

    def fresh(method: str, path: str, **kw) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=10) as client:  # a new connection: the kernel picks a worker
            return client.request(method, path, **kw)

    # The first worker has loaded and waits for its sibling, which is held in its load by the gate.
    deadline = time.monotonic() + 30
    while "other worker processes still starting" not in fresh("GET", "/v2/health/ready").text:
        assert time.monotonic() < deadline, s.output
    assert all(fresh("GET", "/v2/health/ready").status_code == 503 for _ in range(40))
    with open(gate, "wb") as w:  # let the sibling's load finish
        w.write(b"go")
    wait_ready(url)
    answers = [fresh("POST", "/v2/models/sum/infer", json=body) for _ in range(40)]
    assert [r.status_code for r in answers] == [200] * 40, {r.text for r in answers}
    assert s.stop() == 0
    assert not any(bad in s.output for bad in BAD_SIGNS), s.output

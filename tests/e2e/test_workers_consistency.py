"""`--workers N` agrees with itself (issue 9, defect 4): repository actions reach every worker before
they are answered, and a replacement worker takes connections only once its models are ready."""

from __future__ import annotations

import json
import os
import signal
import time

import httpx

from .serving import BAD_SIGNS, LOOPBACK, wait_ready
from .test_workers import worker_pids

INFER = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1]}]}


def _folder(tmp_path) -> str:
    for name, cls in (("pid", "SlowLoadPidModel"), ("sum", "SumModel")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model-settings.json").write_text(
            json.dumps({"name": name, "implementation": f"tests.fixture_models.{cls}"})
        )
    return str(tmp_path)


def _fresh(url: str, method: str, path: str, **kwargs) -> httpx.Response:
    with httpx.Client(timeout=30) as client:  # a new connection each time, so the kernel spreads them
        return client.request(method, url + path, **kwargs)


def _until_both_workers_answer(url: str, parent: int) -> set[int]:
    deadline = time.monotonic() + 60
    seen: set[int] = set()
    while time.monotonic() < deadline:
        children = worker_pids(parent)
        r = _fresh(url, "POST", "/v2/models/pid/infer", json=INFER)
        if r.status_code == 200:
            seen.add(r.json()["outputs"][0]["data"][0])
        if len(children) == 2 and children <= seen:
            return children
    raise AssertionError(f"both workers never answered: {seen}")


def test_repository_actions_reach_every_worker(served, tmp_path):
    s = served(_folder(tmp_path), *LOOPBACK, "--workers", "2")
    url = s.http_url()
    wait_ready(url)
    _until_both_workers_answer(url, s.proc.pid)

    assert _fresh(url, "POST", "/v2/repository/models/sum/unload").status_code == 200
    statuses = [_fresh(url, "POST", "/v2/models/sum/infer", json=INFER).status_code for _ in range(20)]
    # Every worker answers alike (503 once "unloaded is not ready" lands everywhere; 404 before it).
    assert len(set(statuses)) == 1 and statuses[0] in (404, 503), statuses
    ready = [_fresh(url, "GET", "/v2/models/sum/ready").status_code for _ in range(10)]
    assert ready == [503] * 10, ready

    assert _fresh(url, "POST", "/v2/repository/models/sum/load").status_code == 200
    statuses = [_fresh(url, "POST", "/v2/models/sum/infer", json=INFER).status_code for _ in range(20)]
    assert statuses == [200] * 20, statuses
    assert _fresh(url, "POST", "/v2/repository/models/nope/unload").status_code == 404
    assert s.stop() == 0
    assert not any(bad in s.output for bad in BAD_SIGNS), s.output


def test_a_replacement_worker_listens_only_when_ready_and_catches_up(served, tmp_path):
    s = served(_folder(tmp_path), *LOOPBACK, "--workers", "2")
    url = s.http_url()
    wait_ready(url)
    children = _until_both_workers_answer(url, s.proc.pid)
    assert _fresh(url, "POST", "/v2/repository/models/sum/unload").status_code == 200

    victim = next(iter(children))
    os.kill(victim, signal.SIGKILL)
    # Once the supervisor has reaped it, its listener is gone (connections the kernel had queued for a
    # killed process are reset: nothing can drain a SIGKILL); from then on the replacement starts.
    s.wait_for("starting a new one")
    # Probe with fresh connections until the replacement answers: every pid answer is a 200 (never
    # "not ready: loading"), and the replacement knows sum was unloaded.
    pid_statuses, sum_statuses = [], []
    survivor = (children - {victim}).pop()
    deadline = time.monotonic() + 60
    replacement_seen = False
    while not replacement_seen and time.monotonic() < deadline:
        r = _fresh(url, "POST", "/v2/models/pid/infer", json=INFER)
        pid_statuses.append(r.status_code)
        if r.status_code == 200 and r.json()["outputs"][0]["data"][0] not in (victim, survivor):
            replacement_seen = True
        sum_statuses.append(_fresh(url, "POST", "/v2/models/sum/infer", json=INFER).status_code)
    assert replacement_seen
    print(f"after the kill: {len(pid_statuses)} fresh-connection probes, non-200: {[c for c in pid_statuses if c != 200]}")
    assert set(pid_statuses) == {200}, pid_statuses
    statuses = [_fresh(url, "POST", "/v2/models/sum/infer", json=INFER).status_code for _ in range(20)]
    assert len(set(sum_statuses + statuses)) == 1 and statuses[0] in (404, 503), (sum_statuses, statuses)
    assert s.stop() == 0
    assert not any(bad in s.output for bad in BAD_SIGNS), s.output

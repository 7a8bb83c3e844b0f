"""`--workers 2` under the security probe's F6 and F7: traffic/promote/rollback answer only once every
worker applied them, a replacement worker serves with the current policy, and SIGTERM while models are
still loading stops the server (workers included) without a second signal. Real `modelport serve`
subprocesses on port 0."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

import httpx

from .serving import BAD_SIGNS, LOOPBACK, wait_ready
from .test_workers import worker_pids

INFER = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1]}]}


def _versions_folder(tmp_path) -> str:
    for version in ("1", "2"):
        folder = tmp_path / "m" / version
        folder.mkdir(parents=True)
        (folder / "model-settings.json").write_text(json.dumps(
            {"name": "m", "implementation": "tests.fixture_models.PidModel", "parameters": {"version": version}}))
    return str(tmp_path)


def _fresh(url: str, method: str, path: str, **kwargs) -> httpx.Response:
    with httpx.Client(timeout=30) as client:  # a new connection each time, so the kernel spreads them
        return client.request(method, url + path, **kwargs)


def _answers(url: str, n: int = 40) -> Counter:
    """(pid, version) of ``n`` fresh-connection requests to m (no version named: the policy picks)."""
    seen: Counter = Counter()
    for _ in range(n):
        r = _fresh(url, "POST", "/v2/models/m/infer", json=INFER)
        assert r.status_code == 200, r.text
        seen[(r.json()["outputs"][0]["data"][0], r.json()["model_version"])] += 1
    return seen


def _until_both_workers_answer(url: str, parent: int) -> set[int]:
    deadline = time.monotonic() + 60
    seen: set[int] = set()
    while time.monotonic() < deadline:
        children = worker_pids(parent)
        r = _fresh(url, "POST", "/v2/models/m/versions/1/infer", json=INFER)
        if r.status_code == 200:
            seen.add(r.json()["outputs"][0]["data"][0])
        if len(children) == 2 and children <= seen:
            return children
    raise AssertionError(f"both workers never answered: {seen}")


def test_traffic_promote_rollback_reach_every_worker_and_survive_a_replacement(served, tmp_path):
    s = served(_versions_folder(tmp_path), *LOOPBACK, "--workers", "2")
    url = s.http_url()
    wait_ready(url)
    children = _until_both_workers_answer(url, s.proc.pid)
    assert {v for (_, v) in _answers(url, 10)} == {"2"}  # no policy: the newest version

    r = _fresh(url, "POST", "/v2/repository/models/m/promote", json={"version": "1"})
    assert r.status_code == 200 and r.json()["traffic"] == {"1": 100.0}, r.text
    seen = _answers(url)
    assert {v for (_, v) in seen} == {"1"}, seen  # on every worker (the probe saw 9/40 on version 2)
    views = {_fresh(url, "POST", "/v2/repository/models/m/traffic").text for _ in range(10)}
    assert len(views) == 1, views  # every worker reports the same policy

    # A bad change is refused by every worker and changes nothing.
    r = _fresh(url, "POST", "/v2/repository/models/m/promote", json={"version": "9"})
    assert r.status_code == 404 and "version 9" in r.json()["error"], r.text
    assert {v for (_, v) in _answers(url, 10)} == {"1"}

    # A replacement worker starts with the policy its siblings serve with (the probe: 26/40 fell back).
    victim = next(iter(children))
    os.kill(victim, signal.SIGKILL)
    s.wait_for("starting a new one")
    deadline = time.monotonic() + 60
    replacement = None
    while replacement is None and time.monotonic() < deadline:
        for (pid, version), _ in _answers(url, 10).items():
            assert version == "1", (pid, version)
            if pid not in children:
                replacement = pid
    assert replacement is not None
    # Rollback reaches the replacement too: back to no policy, the newest version everywhere.
    r = _fresh(url, "POST", "/v2/repository/models/m/rollback")
    assert r.status_code == 200, r.text
    seen = _answers(url)
    assert {v for (_, v) in seen} == {"2"} and replacement in {p for (p, _) in seen}, seen
    assert s.stop() == 0
    assert not any(bad in s.output for bad in BAD_SIGNS), s.output


SLOW_LOAD = '''
import time
from modelport import Model


class SlowLoad(Model):
    def load(self):
        time.sleep(120)  # far longer than any test: only a stop that abandons the load ends it
        self.ready = True
        return True
'''


def _slow_folder(tmp_path) -> str:
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "slowload.py").write_text(SLOW_LOAD)
    (tmp_path / "slow" / "model-settings.json").write_text(json.dumps({"name": "slow", "implementation": "slowload.SlowLoad"}))
    (tmp_path / "sum").mkdir()
    (tmp_path / "sum" / "model-settings.json").write_text(json.dumps({"name": "sum", "implementation": "tests.fixture_models.SumModel"}))
    return str(tmp_path)


def test_sigterm_while_models_load_stops_within_the_grace_period(served, tmp_path):
    folder = _slow_folder(tmp_path)
    for workers in ("2", "1"):
        s = served(folder, *LOOPBACK, "--workers", workers, "--grace-period", "5")
        url = s.http_url()  # listening (live) while slow still loads
        assert httpx.get(url + "/v2/health/live", timeout=10).status_code == 200
        s.proc.send_signal(signal.SIGTERM)  # one signal only
        code = s.proc.wait(30)  # the probe: never exited; a second SIGTERM did not help
        assert code == 0, s.output
        assert "Model slow is ready" not in s.output and "killing it" not in s.output, s.output
        assert not any(bad in s.output for bad in BAD_SIGNS), s.output
    # And the folder serves normally once its slow model is gone.
    (tmp_path / "slow" / "model-settings.json").unlink()
    s = served(folder, *LOOPBACK, "--workers", "2")
    url = s.http_url()
    wait_ready(url)
    assert _fresh(url, "POST", "/v2/models/sum/infer", json=INFER).status_code == 200
    assert s.stop() == 0


STUCK_STOP = '''
import time
from modelport import Model


class StuckStop(Model):
    def load(self):
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        return {"predictions": [1]}

    def stop(self):
        time.sleep(120)  # a stop hook that never returns in time
'''


def test_a_worker_still_running_past_its_grace_period_is_killed(served, tmp_path):
    (tmp_path / "stuck").mkdir()
    (tmp_path / "stuck" / "stuckstop.py").write_text(STUCK_STOP)
    (tmp_path / "stuck" / "model-settings.json").write_text(json.dumps({"name": "stuck", "implementation": "stuckstop.StuckStop"}))
    s = served(str(tmp_path), *LOOPBACK, "--workers", "2", "--grace-period", "1")
    url = s.http_url()
    wait_ready(url)
    assert _fresh(url, "POST", "/v1/models/stuck:predict", json={"instances": [1]}).status_code == 200
    s.proc.send_signal(signal.SIGTERM)
    code = s.proc.wait(60)  # grace 1 s + 5 s margin, then the supervisor kills what is left
    assert code != 0 and "did not stop within the grace period (1 s); killing it" in s.output, s.output

"""`modelport serve --workers 2` with a limit: each worker process keeps its own resident set under the
limit (per worker, see the README), and traffic that forces evictions in both is served without error."""

from __future__ import annotations

import random
import subprocess
import time

import httpx

from ..e2e.serving import BAD_SIGNS, LOOPBACK, served, wait_ready  # noqa: F401 - the fixture
from .conftest import IRIS_ROW, sklearn_folder, v2_body


def test_workers_each_keep_their_own_limit(served, tmp_path, iris_bytes):  # noqa: F811
    folder = sklearn_folder(tmp_path / "models", iris_bytes, 8)
    s = served(str(folder), *LOOPBACK, "--workers", "2", env={"MODELPORT_MAX_LOADED_MODELS": "2"})
    url = s.http_url()
    wait_ready(url)
    deadline = time.monotonic() + 20
    while len(subprocess.run(["pgrep", "-P", str(s.proc.pid)], capture_output=True, text=True).stdout.split()) < 2:
        assert time.monotonic() < deadline, "workers did not start"
        time.sleep(0.1)
    rng = random.Random(3)
    statuses = []
    for _ in range(60):
        with httpx.Client(timeout=30) as client:  # a new connection each time: both workers get traffic
            name = f"m{rng.randrange(8)}"
            r = client.post(f"{url}/v2/models/{name}/infer", json=v2_body()) if rng.random() < 0.5 else \
                client.post(f"{url}/v1/models/{name}:predict", json={"instances": IRIS_ROW})
            statuses.append((r.status_code, r.text if r.status_code != 200 else ""))
    assert [code for code, _ in statuses] == [200] * 60, [t for c, t in statuses if c != 200]
    for _ in range(10):  # whichever worker answers, it holds at most its limit
        index = httpx.post(f"{url}/v2/repository/index", json={}).json()
        assert len([m for m in index if m["state"] in ("READY", "LOADING")]) <= 2
        assert {m["state"] for m in index} <= {"READY", "LOADING", "REGISTERED", "EVICTED"}
    assert httpx.get(f"{url}/v2/health/ready").status_code == 200
    assert s.stop() == 0
    assert not any(bad in s.output for bad in BAD_SIGNS), s.output

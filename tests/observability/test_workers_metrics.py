"""`--workers N`: /metrics and the statistics sum every worker process, whichever one answers."""

from __future__ import annotations

import json
import re

import httpx

from ..e2e.serving import BAD_SIGNS, LOOPBACK, wait_ready
from ..e2e.test_workers import pids_answering


def test_metrics_and_statistics_cover_all_workers(served, tmp_path):
    (tmp_path / "pid").mkdir()
    (tmp_path / "pid" / "model-settings.json").write_text(json.dumps({"name": "pid", "implementation": "tests.fixture_models.PidModel"}))
    s = served(str(tmp_path), *LOOPBACK, "--workers", "2")
    url = s.http_url()
    wait_ready(url)
    seen: set[int] = set()
    sent = 0
    while len(seen) < 2 and sent < 400:  # until both workers have served some
        seen |= pids_answering(url, 20)
        sent += 20
    assert len(seen) == 2
    for _ in range(10):  # every answer, from either worker, has the whole count
        with httpx.Client() as client:  # a new connection each time
            text = client.get(url + "/metrics").text
            assert re.search(rf'modelport_requests_total{{model="pid",protocol="v1"}} {sent}\.0', text), text
            stats = client.get(url + "/v2/models/pid/stats").json()["model_stats"][0]
            assert stats["inference_count"] == sent and stats["inference_stats"]["compute_infer"]["count"] == sent
            assert client.get(url + "/v2/models/nope/stats").status_code == 404
    with httpx.Client() as client:
        assert client.post(url + "/v1/models/pid:predict", json={"instances": [[1.0]]}).status_code == 200
    assert s.stop() == 0
    assert not any(bad in s.output for bad in BAD_SIGNS), s.output

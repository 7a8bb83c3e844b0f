"""`--workers N`: /metrics and the statistics sum every worker process, whichever one answers."""

from __future__ import annotations

import json
import re
import time

import httpx

from ..e2e.serving import BAD_SIGNS, LOOPBACK, wait_ready


def test_metrics_and_statistics_cover_all_workers(served, tmp_path):
    (tmp_path / "pid").mkdir()
    (tmp_path / "pid" / "model-settings.json").write_text(json.dumps({"name": "pid", "implementation": "tests.fixture_models.PidModel"}))
    s = served(str(tmp_path), *LOOPBACK, "--workers", "2")
    try:
        url = s.http_url()
        wait_ready(url)
        seen: set[int] = set()
        served_ok = 0
        deadline = time.monotonic() + 60
        # Until both workers have served some (one may still be loading: 503, not counted anywhere).
        while (len(seen) < 2 or served_ok < 20) and time.monotonic() < deadline:
            with httpx.Client() as client:  # a new connection each time, so the kernel spreads them
                r = client.post(url + "/v1/models/pid:predict", json={"instances": [[1.0]]})
            if r.status_code == 200:
                seen.add(r.json()["predictions"][0])
                served_ok += 1
            else:
                assert r.status_code == 503 and "loading" in r.text, r.text
        assert len(seen) == 2
        for _ in range(10):  # every answer, from either worker, has the whole count
            with httpx.Client() as client:  # a new connection each time
                text = client.get(url + "/metrics").text
                assert re.search(rf'modelport_requests_total{{model="pid",protocol="v1"}} {served_ok}\.0', text), text
                stats = client.get(url + "/v2/models/pid/stats").json()["model_stats"][0]
                assert stats["inference_count"] == served_ok
                assert stats["inference_stats"]["compute_infer"]["count"] == served_ok
                assert client.get(url + "/v2/models/nope/stats").status_code == 404
        with httpx.Client() as client:
            assert client.post(url + "/v1/models/pid:predict", json={"instances": [[1.0]]}).status_code == 200
    finally:
        code = s.stop()  # SIGTERM, so the workers stop too, whatever happened above
    assert code == 0
    assert not any(bad in s.output for bad in BAD_SIGNS), s.output

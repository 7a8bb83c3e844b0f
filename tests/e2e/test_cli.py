"""`modelport serve` as a subprocess: start, infer, SIGTERM under load, start-up failures."""

from __future__ import annotations

import json
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from .serving import BAD_SIGNS, LOOPBACK, Served, wait_ready

SLOW_MODEL = '''
import asyncio, pathlib
import numpy as np
from modelport import Model, get_predict_response

class Slow(Model):
    def load(self):
        self.ready = True
        return True

    async def predict(self, payload, headers=None):
        await asyncio.sleep(float(self.settings.parameters.extra.get("delay", 1.0)))
        return get_predict_response(payload, np.array([42], dtype=np.int64), self.name)

    def stop(self):
        pathlib.Path(self.settings.parameters.extra["stopped_file"]).write_text("stopped")
'''


def test_serves_bundled_examples(served):
    pytest.importorskip("sklearn")
    s = served(*LOOPBACK)
    url = s.http_url()
    wait_ready(url)
    r = httpx.post(url + "/v2/models/iris/infer",
                   json={"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32",
                                     "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [0, 2]
    r = httpx.post(url + "/v1/models/iris:predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]})
    assert r.json() == {"predictions": [0]}
    r = httpx.post(url + "/v1/models/sentiment:predict", json={"instances": ["what a great day", "awful service"]})
    assert [p["label"] for p in r.json()["predictions"]] == ["positive", "negative"]
    r = httpx.post(url + "/v2/models/iris/infer", content=b"{broken")
    assert r.status_code == 400
    assert httpx.get(url + "/v2/health/live").status_code == 200
    assert s.stop() == 0
    assert not any(bad in s.output for bad in BAD_SIGNS), s.output


def test_sigterm_under_load_drops_nothing(served, tmp_path):
    models = tmp_path / "models"
    (models / "slow").mkdir(parents=True)
    (models / "slow" / "slow_model.py").write_text(SLOW_MODEL)
    stopped = tmp_path / "stopped"
    (models / "slow" / "model-settings.json").write_text(json.dumps({
        "name": "slow", "implementation": "slow_model.Slow",
        "parameters": {"extra": {"delay": 3.0, "stopped_file": str(stopped)}},
    }))
    s = served(str(models), *LOOPBACK, "--grace-period", "20")
    url = s.http_url()
    wait_ready(url)

    def one(_):
        with httpx.Client(timeout=30) as client:
            return client.post(url + "/v2/models/slow/infer",
                               json={"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]})

    with ThreadPoolExecutor(24) as pool:
        futures = [pool.submit(one, i) for i in range(24)]
        # Wait until all 24 are inside the model's predict (the server's own in-flight gauge).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            metrics = httpx.get(url + "/metrics", timeout=5).text
            if 'modelport_requests_in_flight{model="slow"} 24.0' in metrics:
                break
            time.sleep(0.02)
        else:
            raise AssertionError("the 24 requests never were in flight together")
        s.proc.send_signal(signal.SIGTERM)
        s.wait_for("draining", timeout=5)
        # Readiness flips at once: a new request is refused (503, or the listener is already closed).
        try:
            assert httpx.get(url + "/v2/health/ready", timeout=2).status_code == 503
        except httpx.TransportError:
            pass
        responses = [f.result() for f in futures]
    failed = [r for r in responses if r.status_code != 200]
    assert not failed, [(r.status_code, r.text) for r in failed]
    assert all(r.json()["outputs"][0]["data"] == [42] for r in responses)
    assert s.proc.wait(30) == 0
    s._reader.join(5)
    assert stopped.read_text() == "stopped", "the model's stop hook did not run"
    assert not any(bad in s.output for bad in BAD_SIGNS), s.output
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/v2/health/live", timeout=2)


def one_clear_error(s: Served, expected: str, code_expected=lambda c: c != 0) -> None:
    code = s.proc.wait(30)
    s._reader.join(5)
    assert code_expected(code), (code, s.output)
    assert expected in s.output, s.output
    assert not any(bad in s.output for bad in BAD_SIGNS), s.output
    errors = [line for line in s.lines if "ERROR" in line]
    assert len(errors) == 1, s.output


def test_port_in_use_exits_with_one_line(served, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        s = served("--host", "127.0.0.1", "--http-port", str(port), "--grpc-port", "0")
        one_clear_error(s, f"127.0.0.1:{port}")


def test_bad_settings_exit_with_one_line(served, tmp_path):
    (tmp_path / "settings.json").write_text(json.dumps({"http_port": "eighty"}))
    one_clear_error(served(str(tmp_path)), "http_port")
    # An unknown key is only a warning (see tests/compat), unless strict settings are asked for.
    (tmp_path / "settings.json").write_text(json.dumps({"no_such_setting": 1, "strict_settings": True}))
    one_clear_error(served(str(tmp_path)), "no_such_setting")
    (tmp_path / "settings.json").write_text("{not json")
    one_clear_error(served(str(tmp_path)), "settings.json")


def test_bad_flag_and_env(served, tmp_path):
    one_clear_error(served(str(tmp_path), env={"MODELPORT_WORKERS": "zero"}), "workers")
    one_clear_error(served(str(tmp_path / "nope")), "does not exist")


def test_unimportable_model_exits_with_one_line(served, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model-settings.json").write_text(json.dumps({"name": "m", "implementation": "nowhere.Model"}))
    one_clear_error(served(str(tmp_path), *LOOPBACK), "nowhere")


def test_settings_precedence_end_to_end(served, tmp_path):
    """settings.json < MODELPORT_* < flags, observed on the running server."""
    (tmp_path / "settings.json").write_text(json.dumps({"server_name": "from-file", "max_request_size": 100, "enable_docs": False}))
    s = served(str(tmp_path), *LOOPBACK, "--max-request-size", "5000",
               env={"MODELPORT_SERVER_NAME": "from-env", "MODELPORT_MAX_REQUEST_SIZE": "200"})
    url = s.http_url()
    wait_ready(url)
    assert httpx.get(url + "/v2").json()["name"] == "from-env"  # env beats file
    assert httpx.get(url + "/docs").status_code == 404  # file beats default
    r = httpx.post(url + "/v2/models/x/infer", content=b" " * 1000)
    # flag (5000) beats env (200): the body was read (no 413), then the unknown model answered
    assert r.status_code == 404 and "not found" in r.json()["error"]
    r = httpx.post(url + "/v2/models/x/infer", content=b" " * 6000)
    assert r.status_code == 413
    assert s.stop() == 0


def test_json_logs(served, tmp_path):
    s = served(str(tmp_path), *LOOPBACK, "--log-format", "json")
    s.http_url()
    assert s.stop() == 0
    records = [json.loads(line) for line in s.lines if line.startswith("{")]
    assert records and all({"timestamp", "level", "logger", "message"} <= set(r) for r in records)
    assert any("Listening" in r["message"] for r in records)

"""modelport on a real local Ray cluster: a folder served through Ray Serve over HTTP.

One cluster (ray.init on loopback) and one application for the module: iris with two replicas, and an
autoscaling model that sleeps 50 ms per request. Replica ids come back in x-modelport-replica.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

import httpx
import joblib
import pytest

from modelport.settings import ServerSettings

with warnings.catch_warnings():  # Ray's own imports warn about its dependencies: not ours to fix
    warnings.simplefilter("ignore")
    import ray
    from ray import serve

    from modelport.ray import REPLICA_HEADER, run

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

IRIS_ROW = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [6.7, 3.0, 5.2, 2.3]}]}
SLOW_MODEL = '''
import time
from modelport import Model

class Slow(Model):
    def predict(self, payload, headers=None):
        time.sleep(0.05)
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("ray-models")
    (folder / "iris").mkdir()
    x, y = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), folder / "iris" / "model.joblib")
    (folder / "iris" / "model-settings.json").write_text(json.dumps({
        "name": "iris", "implementation": "sklearn",
        "ray": {"num_replicas": 2, "ray_actor_options": {"num_cpus": 0.1}, "health_check_period_s": 1},
    }))
    (folder / "slow").mkdir()
    (folder / "slow" / "slow_model.py").write_text(SLOW_MODEL)
    (folder / "slow" / "model-settings.json").write_text(json.dumps({
        "name": "slow", "implementation": "slow_model.Slow",
        "ray": {"ray_actor_options": {"num_cpus": 0.1}, "autoscaling_config": {
            "min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 1, "metrics_interval_s": 0.2,
            "look_back_period_s": 1, "upscale_delay_s": 0.5, "downscale_delay_s": 600}},
    }))
    (folder / "batched").mkdir()
    (folder / "batched" / "slow_model.py").write_text(SLOW_MODEL)
    (folder / "batched" / "model-settings.json").write_text(json.dumps({
        "name": "batched", "implementation": "slow_model.Batched", "max_batch_size": 8, "max_batch_time": 0.2,
        "ray": {"ray_actor_options": {"num_cpus": 0.1}},
    }))
    ray.init(num_cpus=4, include_dashboard=False, logging_level="warning", log_to_driver=False)
    port = _free_port()
    try:
        run(str(folder), settings=ServerSettings(host="127.0.0.1", http_port=port), blocking=False)
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


def _replicas(deployment: str) -> int:
    status = serve.status().applications["modelport"].deployments[deployment]
    return status.replica_states.get("RUNNING", 0)


def _load(url: str, body: dict, seconds: float, workers: int, path: str = "/v2/models/iris/infer") -> Counter:
    """Closed-loop load from ``workers`` threads; counts answers by status (0: no answer)."""
    counts: Counter = Counter()
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def work() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while time.monotonic() < stop:
                try:
                    status = client.post(path, json=body).status_code
                except httpx.TransportError:
                    status = 0
                with lock:
                    counts[status] += 1

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts


def test_two_replicas_answer_through_modelports_own_routes(cluster):
    with httpx.Client(base_url=cluster, timeout=30) as client:
        assert client.get("/v2/health/ready").json() == {"ready": True}
        seen = set()
        for _ in range(40):
            answer = client.post("/v2/models/iris/infer", json=IRIS_ROW)
            assert answer.status_code == 200 and answer.json()["outputs"][0]["data"] == [2]
            seen.add(answer.headers[REPLICA_HEADER])
        assert len(seen) == 2, seen
        assert client.post("/v1/models/iris:predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}).json() == {"predictions": [0]}
        assert client.get("/v2/models/iris").json()["platform"] == "sklearn"
        # Errors are modelport's, with the same status and message as one server gives.
        assert client.post("/v2/models/nope/infer", json=IRIS_ROW).json() == {"error": "Model nope not found"}
        bad = client.post("/v2/models/iris/infer", json={"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]})
        assert bad.status_code == 400 and "3 features" in bad.json()["error"]
        assert client.get("/v2/health/live").status_code == 200


def test_batching_and_hooks_keep_their_semantics_on_a_replica(cluster):
    """Concurrent V1 requests to one replica are merged into one predict; each caller gets its own row back."""
    from concurrent.futures import ThreadPoolExecutor

    def call(i: int) -> list:
        answer = httpx.post(f"{cluster}/v1/models/batched:predict", json={"instances": [[i]]}, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()["predictions"][0]

    with ThreadPoolExecutor(8) as pool:
        rows = list(pool.map(call, range(8)))
    assert [row[0] for row in rows] == [i * 2 for i in range(8)]  # preprocess ran, rows went back to their callers
    assert max(row[1] for row in rows) > 1, rows  # some requests shared a predict call


def test_a_killed_replica_is_replaced_under_load(cluster):
    victim_id = httpx.post(f"{cluster}/v2/models/iris/infer", json=IRIS_ROW).headers[REPLICA_HEADER]
    actors = [a for a in ray.util.list_named_actors(all_namespaces=True) if victim_id in a["name"]]
    assert len(actors) == 1, actors
    counts: Counter = Counter()
    loader = threading.Thread(target=lambda: counts.update(_load(cluster, IRIS_ROW, 8, 4)))
    loader.start()
    time.sleep(2)  # load is flowing to both replicas
    ray.kill(ray.get_actor(actors[0]["name"], namespace=actors[0]["namespace"]), no_restart=True)
    loader.join()
    deadline = time.monotonic() + 60
    while _replicas("model-iris") < 2:
        assert time.monotonic() < deadline, "the killed replica was not replaced"
        time.sleep(0.5)
    failed = sum(n for status, n in counts.items() if status != 200)
    print(f"replica kill under load (4 clients, 8 s): {counts[200]} ok, {failed} failed: {dict(counts)}")
    assert counts[200] > 50
    # Only requests in flight on the dead replica can fail, and they fail cleanly (503, retryable).
    assert set(counts) <= {200, 503} and failed <= 8
    assert httpx.post(f"{cluster}/v2/models/iris/infer", json=IRIS_ROW).status_code == 200


def test_the_autoscaler_adds_a_replica_under_load(cluster):
    assert _replicas("model-slow") == 1
    body = {"instances": [[1, 2]]}
    deadline = time.monotonic() + 90
    while _replicas("model-slow") < 2:
        assert time.monotonic() < deadline, "no second replica under load"
        counts = _load(cluster, body, 2, 6, path="/v1/models/slow:predict")
        assert set(counts) == {200}, counts


def test_modelport_serve_ray_joins_a_cluster_and_drains_on_sigterm(cluster, tmp_path):
    """`modelport serve FOLDER --ray --address ...` as a user runs it; last in the module, as it redeploys the app."""
    import os
    import signal
    import subprocess
    import sys

    folder = tmp_path / "models" / "iris"
    folder.mkdir(parents=True)
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), folder / "model.joblib")
    (folder / "model-settings.json").write_text('{"name": "iris", "ray": {"ray_actor_options": {"num_cpus": 0.1}}}')
    port = int(cluster.rsplit(":", 1)[1])  # Serve already runs on this cluster: its HTTP proxy keeps its port
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelport.cli", "serve", str(tmp_path / "models"), "--ray", "--address",
         ray.get_runtime_context().gcs_address, "--host", "127.0.0.1", "--http-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONPATH": str(repo)},
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not any("(Ray Serve)" in line for line in lines):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/models/iris:predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}, timeout=30)
        assert answer.json() == {"predictions": [0]}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, "".join(lines)
        reader.join(5)
        assert any("Server stopped" in line for line in lines)
    finally:
        if proc.poll() is None:
            proc.kill()

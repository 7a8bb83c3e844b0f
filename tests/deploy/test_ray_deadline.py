"""Under Ray, ``request_timeout`` holds even for a replica that cannot answer: Ray's proxy gets the same
deadline (one second later), so a request whose replica stopped, or died before the proxy heard of it, is
answered 408 instead of waiting for good. A replica is frozen with SIGSTOP: alive to Ray, silent to the proxy.

Its own cluster (a driver of the module cluster in test_ray.py cannot join a second one), started with
`modelport serve --ray` as a user runs it, settings from the folder's settings.json.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from .ray_cluster import RAY_TEST_MARKS, IRIS_ROW, RayNode, _children, comm, make_folder, stop_server, unused_port, wait_for

pytestmark = RAY_TEST_MARKS

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 2.0


def test_request_timeout_is_the_proxys_deadline_when_a_replica_stops_answering(tmp_path):
    folder = make_folder(tmp_path / "models", ("iris",))
    (folder / "settings.json").write_text(json.dumps({"request_timeout": TIMEOUT, "enable_grpc": False}))
    port = unused_port()
    url = f"http://127.0.0.1:{port}/v2/models/iris/infer"
    node = RayNode.head("deadline", num_cpus=1)
    server, lines, frozen = None, [], None
    try:
        options = {"num_replicas": 1, "ray_actor_options": {"num_cpus": 0.1}}
        server = subprocess.Popen(
            [sys.executable, "-m", "modelport.cli", "serve", str(folder), "--ray", "--address", node.address,
             "--host", "127.0.0.1", "--http-port", str(port), "--ray-options", json.dumps(options)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(REPO), "RAY_AUTH_MODE": "token"},
        )
        threading.Thread(target=lambda: lines.extend(server.stdout), daemon=True).start()
        wait_for(lambda: any("(Ray Serve)" in line for line in lines) or server.poll() is not None, 180, "not serving")
        assert server.poll() is None, "".join(lines)
        assert httpx.post(url, json=IRIS_ROW, timeout=30).status_code == 200

        replicas = [pid for pid in _children(node.proc.pid) if comm(pid).startswith("ray::ServeRepl")]
        assert len(replicas) == 1, replicas
        frozen = replicas[0]
        os.kill(frozen, signal.SIGSTOP)
        started = time.monotonic()
        answer = httpx.post(url, json=IRIS_ROW, timeout=30)  # without the proxy's deadline: no answer in 30 s
        took = time.monotonic() - started
        print(f"frozen replica: {answer.status_code} after {took:.2f} s (request_timeout {TIMEOUT:g} s)")
        assert answer.status_code == 408, (answer.status_code, answer.text)
        assert TIMEOUT <= took < TIMEOUT + 10, took
    finally:
        if frozen is not None:
            os.kill(frozen, signal.SIGCONT)
        stop_server(server)
        node.stop()

"""Beyond one machine: a two-node Ray cluster on loopback, a replica on each node, one node's raylet
killed under load. Measures (and prints) the requests lost and the time until every answer is 200 again.

Both nodes are started with `ray start --block` in their own process groups and temp dirs, so the test
ends exactly the processes it started (never `ray stop`, which would end every Ray on the machine).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import httpx

from .ray_cluster import RAY_TEST_MARKS, IRIS_ROW, RayNode, load, make_folder, stop_server, unused_port, wait_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from modelport.ray import REPLICA_HEADER

pytestmark = RAY_TEST_MARKS

REPO = Path(__file__).resolve().parents[2]


def _replica_processes(node: RayNode) -> int:
    return node.processes("ray::ServeRepl")


def test_a_node_lost_under_load(tmp_path):
    folder = make_folder(tmp_path / "models", ("iris",))
    port = unused_port()
    url = f"http://127.0.0.1:{port}"
    nodes: list[RayNode] = []
    server = None
    lines: list[str] = []
    try:
        head = RayNode.head("head", num_cpus=1, extra=('--resources={"node1": 1}',))
        gcs_port = head.address.rsplit(":", 1)[1]
        nodes.append(head)
        second = RayNode("node2", [f"--address=127.0.0.1:{gcs_port}", '--resources={"node2": 1}'])
        nodes.append(second)
        wait_for(lambda: second.raylet() is not None, 60, "the second node did not start")
        # `modelport serve --ray` joins as a user would: one replica per node, the HTTP proxy on the head
        # only (two proxies on one host would want the same port).
        options = {"num_replicas": 2, "max_replicas_per_node": 1, "health_check_period_s": 1, "health_check_timeout_s": 5,
                   "ray_actor_options": {"num_cpus": 0.1}}
        server = subprocess.Popen(
            [sys.executable, "-m", "modelport.cli", "serve", str(folder), "--ray", "--address", f"127.0.0.1:{gcs_port}",
             "--host", "127.0.0.1", "--http-port", str(port), "--enable-grpc", "false", "--ray-proxy-location", "HeadOnly",
             "--ray-options", json.dumps(options)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(REPO), "RAY_AUTH_MODE": "token"},
        )
        threading.Thread(target=lambda: lines.extend(server.stdout), daemon=True).start()
        wait_for(lambda: any("(Ray Serve)" in line for line in lines) or server.poll() is not None, 180, "not serving")
        assert server.poll() is None, "".join(lines)
        assert (_replica_processes(head), _replica_processes(second)) == (1, 1), "a replica on each node"
        seen = {httpx.post(f"{url}/v2/models/iris/infer", json=IRIS_ROW, timeout=30).headers[REPLICA_HEADER] for _ in range(30)}
        assert len(seen) == 2, seen

        samples: list[tuple[float, int]] = []
        loader = threading.Thread(target=lambda: load(url, IRIS_ROW, 20, 4, samples=samples))
        loader.start()
        time.sleep(3)  # load flows to both nodes
        killed_at = time.monotonic()
        os.kill(second.raylet(), signal.SIGKILL)
        loader.join()
        failures = [(t, s) for t, s in samples if s != 200]
        after = [s for t, s in samples if t > killed_at]
        recovery = max((t for t, _ in failures), default=killed_at) - killed_at
        print(f"two nodes, raylet of node 2 killed under load (4 clients, 20 s): {len(samples)} answers, "
              f"{len(failures)} lost (statuses {sorted({s for _, s in failures})}); recovery (kill to the last failed "
              f"answer, 0 when none failed) {recovery:.2f} s; {len(after)} answers after the kill")
        assert len(after) > 50 and after[-20:] == [200] * 20, "serving again, from the surviving node"
        assert len(failures) <= 40 and all(s != -1 for _, s in failures), failures  # lost, never hung
    finally:
        stop_server(server)
        for node in reversed(nodes):
            node.stop()

"""Beyond one machine: a two-node Ray cluster on loopback, a replica on each node, one node's raylet
killed under load. Measures (and prints) the requests lost and the time until every answer is 200 again.

Both nodes are started with `ray start --block` in their own process groups and temp dirs, so the test
ends exactly the processes it started (never `ray stop`, which would end every Ray on the machine).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import httpx

from .ray_cluster import RAY_TEST_MARKS, IRIS_ROW, free_port, load, make_folder, temp_dir

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from modelport.ray import REPLICA_HEADER

pytestmark = RAY_TEST_MARKS

RAY = str(Path(sys.executable).with_name("ray"))
REPO = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc), deepest last."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


class Node:
    """One `ray start --block` and everything under it."""

    def __init__(self, name: str, args: list[str]):
        self.dir = temp_dir(f"mp{name}")
        self.log = open(Path(self.dir) / "start.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [RAY, "start", "--block", "--node-ip-address=127.0.0.1", f"--temp-dir={self.dir}", "--num-cpus=1",
             "--disable-usage-stats", *args],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            # Multi-node on one host: Ray refuses a second node when this is "0" (it means "single node only").
            # Token auth on every node (the head turns it on by default; a joining node must say so).
            # The head's proxy spreads requests over both nodes (by default it keeps them on its own node's replica).
            env={**{k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}, "RAY_AUTH_MODE": "token",
                 "RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING": "0"},
        )
        self.seen: set[int] = set()

    def raylet(self) -> int | None:
        pids = _children(self.proc.pid)
        self.seen.update(pids)
        return next((p for p in pids if _comm(p) == "raylet"), None)

    def stop(self) -> None:
        self.seen.update(_children(self.proc.pid) if self.proc.poll() is None else [])
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            for pid in self.seen:  # anything that left the group (Ray daemons may)
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                continue
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.25)


def _replica_processes(node: Node) -> int:
    return sum(_comm(pid).startswith("ray::ServeRepl") for pid in _children(node.proc.pid))


def test_a_node_lost_under_load(tmp_path):
    folder = make_folder(tmp_path / "models", ("iris",))
    gcs_port, port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    nodes: list[Node] = []
    server = None
    lines: list[str] = []
    try:
        head = Node("head", ["--head", f"--port={gcs_port}", "--include-dashboard=false", '--resources={"node1": 1}'])
        nodes.append(head)
        _wait(lambda: head.raylet() is not None, 60, "the head node did not start")
        second = Node("node2", [f"--address=127.0.0.1:{gcs_port}", '--resources={"node2": 1}'])
        nodes.append(second)
        _wait(lambda: second.raylet() is not None, 60, "the second node did not start")
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
        _wait(lambda: any("(Ray Serve)" in line for line in lines) or server.poll() is not None, 180, "not serving")
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
        assert len(failures) <= 40, failures
        assert recovery < 30
    finally:
        if server is not None:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait(10)
        for node in reversed(nodes):
            node.stop()

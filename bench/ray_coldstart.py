"""Scale to zero and back on Ray Serve: how long the first request waits when no replica is running.

`modelport serve FOLDER --ray` with autoscaling min_replicas 0 (one initial replica, scale-down after 1 s
idle); each round waits until the replica processes are gone, then times one V2 request on iris from
send to answer (replica start + model load + the request), and a second one for comparison.

    python bench/ray_coldstart.py [--rounds 3]

Needs modelport with the ray and sklearn extras in the running Python.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import procs  # noqa: E402
from ray_bench import make_folder  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BODY = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [6.7, 3.0, 5.2, 2.3]}]}
OPTIONS = {"ray_actor_options": {"num_cpus": 0.1}, "autoscaling_config": {
    "min_replicas": 0, "initial_replicas": 1, "max_replicas": 1, "target_ongoing_requests": 1, "metrics_interval_s": 0.2,
    "look_back_period_s": 1, "upscale_delay_s": 0, "downscale_delay_s": 1, "downscale_to_zero_delay_s": 1}}


def replicas(root: int) -> int:
    count = 0
    for pid in procs.tree_pids(root):
        try:
            count += Path(f"/proc/{pid}/comm").read_text().startswith("ray::ServeRepl")
        except OSError:
            pass
    return count


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(what)
        time.sleep(0.2)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="a proof that the script runs: no results file")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="modelport-ray-coldstart-"))
    folder = make_folder(work)
    port = procs.free_port()
    argv = [sys.executable, "-m", "modelport.cli", "serve", str(folder), "--ray", "--host", "127.0.0.1", "--http-port",
            str(port), "--enable-grpc", "false", "--log-level", "warning", "--ray-options", json.dumps(OPTIONS)]
    server = procs.ServerProcess(argv, {**os.environ, "PYTHONPATH": str(REPO)}, REPO, work / "server.log")
    server.start()
    cold, warm = [], []
    try:
        server.wait_ready(f"http://127.0.0.1:{port}/v2/health/ready", timeout=180)
        url = f"http://127.0.0.1:{port}/v2/models/iris/infer"
        for rnd in range(args.rounds):
            wait_for(lambda: replicas(server.pid) == 0, 120, "the deployment did not scale to zero")
            started = time.perf_counter()
            answer = httpx.post(url, json=BODY, timeout=120)
            cold.append(time.perf_counter() - started)
            started = time.perf_counter()
            second = httpx.post(url, json=BODY, timeout=120)
            warm.append(time.perf_counter() - started)
            if answer.status_code != 200 or second.status_code != 200:
                raise RuntimeError(f"answers {answer.status_code} {second.status_code}: {answer.text[:200]}")
            print(f"round {rnd}: first request after scale-to-zero {cold[-1]:.2f} s, the next {warm[-1] * 1000:.1f} ms", flush=True)
    finally:
        server.stop(grace=30)
    mode = " (SMOKE RUN: not a measurement)" if args.smoke else ""
    report = (f"scale to zero and back, iris on modelport --ray, {args.rounds} round(s){mode}\n\n"
              f"| | median | min | max |\n|---|---|---|---|\n"
              f"| cold start (first request, s) | {statistics.median(cold):.2f} | {min(cold):.2f} | {max(cold):.2f} |\n"
              f"| next request (ms) | {statistics.median(warm) * 1000:.1f} | {min(warm) * 1000:.1f} | {max(warm) * 1000:.1f} |\n")
    print("\n" + report)
    if not args.smoke:
        out = REPO / "bench" / "results" / f"{time.strftime('%Y-%m-%d-%H%M%S')}-ray-coldstart.md"
        out.write_text(report)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Throughput against replicas on Ray Serve, for a model that waits on I/O (asyncio.sleep 20 ms per request).

`modelport serve FOLDER --ray` at 1, 2 and 4 replicas (each replica takes 0.1 CPU, so all fit one small
box); `wrk -t1 -cN` on V1 predict for a fixed time after a warm-up. A replica takes at most
max_ongoing_requests (Ray's default 5) requests at once, so one replica tops out near 5 / 20 ms = 250 req/s
and more replicas raise the ceiling, until Ray's own per-request CPU (proxy + replica) is the limit. The
report gives req/s, p50/p99, req/s per replica and the speed-up over one replica.

    python bench/ray_scaling.py [--replicas 1,2,4] [--seconds 10] [--conns 32] [--max-ongoing 5]

Needs modelport with the ray extra in the running Python, and wrk (Debian package).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import load, procs  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BODY = json.dumps({"instances": [[1, 2, 3, 4]]})
WAITS = '''
import asyncio
from modelport import Model

class Waits(Model):
    async def predict(self, payload, headers=None):
        await asyncio.sleep(0.02)
        return {"predictions": [len(payload["instances"])]}
'''


def make_folder(root: Path) -> Path:
    folder = root / "models" / "waits"
    folder.mkdir(parents=True)
    (folder / "waits_model.py").write_text(WAITS)
    (folder / "model-settings.json").write_text(json.dumps({"name": "waits", "implementation": "waits_model.Waits"}))
    return folder.parent


def one_run(replicas: int, folder: Path, args, work: Path) -> dict:
    port = procs.free_port()
    options = {"num_replicas": replicas, "max_ongoing_requests": args.max_ongoing, "ray_actor_options": {"num_cpus": 0.1}}
    argv = [sys.executable, "-m", "modelport.cli", "serve", str(folder), "--ray", "--host", "127.0.0.1",
            "--http-port", str(port), "--enable-grpc", "false", "--log-level", "warning", "--ray-options", json.dumps(options)]
    server = procs.ServerProcess(argv, {**os.environ, "PYTHONPATH": str(REPO)}, REPO, work / f"ray-{replicas}-{time.time_ns()}.log")
    server.start()
    try:
        started = server.wait_ready(f"http://127.0.0.1:{port}/v2/health/ready", timeout=180)
        url = f"http://127.0.0.1:{port}/v1/models/waits:predict"
        lua = load.write_lua(work / "waits.lua", BODY)
        load.run_wrk(url, lua, args.conns, args.warmup)
        result = load.run_wrk(url, lua, args.conns, args.seconds)
        result.update(replicas=replicas, ready_s=started)
        return result
    finally:
        server.stop(grace=30)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", default="1,2,4")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--max-ongoing", type=int, default=5, help="Ray's max_ongoing_requests per replica (its default: 5)")
    parser.add_argument("--smoke", action="store_true", help="a proof that the script runs: no results file")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.replicas.split(",")]
    load.ensure_tools()
    work = Path(tempfile.mkdtemp(prefix="modelport-ray-scaling-"))
    folder = make_folder(work)
    runs = []
    for rnd in range(args.rounds):
        for n in counts:
            run = one_run(n, folder, args, work)
            run["round"] = rnd
            runs.append(run)
            print(f"round {rnd} replicas {n}: {run['rps']:7.0f} req/s  p50 {run['p50_ms']:6.2f} ms  p99 {run['p99_ms']:6.2f} ms  "
                  f"errors {run['errors']}", flush=True)
    med = {n: {k: statistics.median(r[k] for r in runs if r["replicas"] == n) for k in ("rps", "p50_ms", "p99_ms")} for n in counts}
    mode = " (SMOKE RUN: not a measurement)" if args.smoke else ""
    lines = [f"I/O-bound model (asyncio.sleep 20 ms) on modelport --ray, V1 predict, wrk -t1 -c{args.conns}, "
             f"{args.seconds} s, max_ongoing_requests {args.max_ongoing}, {args.rounds} round(s), medians{mode}", "",
             "| replicas | req/s | req/s per replica | vs 1 replica | p50 ms | p99 ms | errors |", "|---|---|---|---|---|---|---|"]
    base = med[counts[0]]["rps"] / counts[0]
    for n in counts:
        m = med[n]
        errors = sum(r["errors"] for r in runs if r["replicas"] == n)
        lines.append(f"| {n} | {m['rps']:.0f} | {m['rps'] / n:.0f} | {m['rps'] / base / counts[0]:.2f}× | {m['p50_ms']:.2f} | "
                     f"{m['p99_ms']:.2f} | {errors} |")
    report = "\n".join(lines)
    print("\n" + report)
    if not args.smoke:
        out = REPO / "bench" / "results" / f"{time.strftime('%Y-%m-%d-%H%M%S')}-ray-scaling"
        out.with_suffix(".md").write_text(report + "\n")
        out.with_suffix(".json").write_text(json.dumps(runs, indent=1))
        print(f"\nwrote {out}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

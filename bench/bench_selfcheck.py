"""Checks `modelport bench` itself: its CPU cost per request against the server's, and its numbers against wrk's.

    python bench/bench_selfcheck.py [--seconds 10] [--concurrency 8] [--rounds 2]

Starts `modelport serve` on the bundled examples, then alternates `modelport bench` and `wrk` (same
request, same connections, same duration) on iris over REST V2 JSON. Prints JSON.

Reading it: "headroom_x" is the server's CPU per request over the bench's, i.e. how many times one modelport
process's rate one bench process can drive. "bench_vs_wrk_rps" compares throughput. On a machine with
fewer free cores than client + server need, the two differ by about the CPU the client takes from the server
(the bench spends ~25 us of CPU per request, wrk a few): measure on a quiet machine, or with the client on
its own cores (taskset), before reading a gap as a measurement error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from modelport.bench import BenchConfig, build_request, run_bench, start_server  # noqa: E402
from modelport.bench.load import http_request_bytes  # noqa: E402
from modelport.cli import EXAMPLES  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, body: bytes, concurrency: int, seconds: int) -> dict:
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f"wrk.body = {json.dumps(body.decode())}\n")
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s", str(script),
                          url + "/v2/models/iris/infer"], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p50.group(2)]
    return {"rps": rps, "p50_ms": float(p50.group(1)) * scale}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--pin", action="store_true", help="server on CPU 0, bench and wrk on CPU 1")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("needs wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    server = start_server(str(EXAMPLES), ["--enable-grpc", "false"])
    if args.pin:
        os.sched_setaffinity(server.proc.pid, {0})
        os.sched_setaffinity(0, {1})  # this process, and wrk (started from it) with it
    try:
        config = BenchConfig(model="iris", url=server.url, concurrency=[args.concurrency], duration=args.seconds,
                             warmup=1.0, metrics=False)
        raw = http_request_bytes(server.url, "iris", "rest-v2", build_request(config))
        body = raw.split(b"\r\n\r\n", 1)[1]
        rounds = []
        for _ in range(args.rounds):
            before = cpu_seconds(server.proc.pid)
            step = run_bench(config, live=False)[0]
            server_cpu_us = 1e6 * (cpu_seconds(server.proc.pid) - before) / max(1, step.requests)
            w = wrk(server.url, body, args.concurrency, args.seconds)
            rounds.append({"bench_rps": round(step.throughput, 1), "bench_p50_ms": round(step.latency_ms["p50"], 3),
                           "wrk_rps": w["rps"], "wrk_p50_ms": w["p50_ms"],
                           "bench_cpu_us_per_request": round(step.client_cpu_us, 1),
                           "server_cpu_us_per_request": round(server_cpu_us, 1)})
        bench_rps = sum(r["bench_rps"] for r in rounds) / len(rounds)
        wrk_rps = sum(r["wrk_rps"] for r in rounds) / len(rounds)
        bench_cpu = sum(r["bench_cpu_us_per_request"] for r in rounds) / len(rounds)
        server_cpu = sum(r["server_cpu_us_per_request"] for r in rounds) / len(rounds)
        print(json.dumps({
            "cores": os.cpu_count(), "concurrency": args.concurrency, "seconds": args.seconds, "rounds": rounds,
            "bench_vs_wrk_rps": round(bench_rps / wrk_rps, 3),
            # How many times the server's per-request CPU the bench spends less: the multiple of the server's
            # one-core rate that one bench process can drive.
            "headroom_x": round(server_cpu / bench_cpu, 2) if bench_cpu else None,
            "bench_capacity_rps_one_core": round(1e6 / bench_cpu) if bench_cpu else None,
        }, indent=2))
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

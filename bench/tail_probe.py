"""The tail at 64 connections, seen by wrk and by a client that records every request, turn about
against the same server (issue 24's tail target: p99 at c=64 within 2x the floor's).

On this machine wrk's p99 at c=64 swings several-fold from run to run (18-334 ms for the floor over
31 runs) while its p90 stays near its p50. This puts the same load on the same server with a client
that keeps each request's latency and connection (uvloop, one request in flight per connection,
all connections opened before the first request), so the two can be compared run for run, and the
slow requests located: in time (the whole server stalled) or on a few connections (unfairness).

    python bench/tail_probe.py                          # floor, then modelport (user's class), 3 rounds
    python bench/tail_probe.py --servers floor,modelport,builtin --proto v1,v2
    python bench/tail_probe.py --servers modelport --rounds 1 --seconds 4

The servers come from bench/cpuprobe.py (``floor``: bench/floor_app.py; ``modelport``: a user's class,
bench/models/iris; ``builtin``: the built-in sklearn runtime, bench/models/iris-sklearn). The recording
client is bench/harness/load.py's (bench/run.py takes REST latencies at c=64 from it). Needs wrk.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import cpuprobe  # noqa: E402
from harness import load  # noqa: E402
from harness.report import write_summary  # noqa: E402

ROWS = [[6.8, 2.8, 4.8, 1.4]]
MODEL_DIRS = {"floor": None, "modelport": "bench/models/iris", "builtin": "bench/models/iris-sklearn"}


def recorded(port: int, raw: bytes, conns: int, seconds: float) -> dict:
    start, records = load.record_requests(f"http://127.0.0.1:{port}/", raw, conns, seconds)
    bad = sum(1 for r in records if r[3] != b"200")
    latencies = sorted(r[2] for r in records)
    n = len(latencies)
    slow_cut = 5 * latencies[n // 2]
    slow = [r for r in records if r[2] > slow_cut]

    def pct(q: float) -> float:
        return round(latencies[min(n - 1, int(q / 100 * n))] * 1000, 2)

    return {"client": "recorder", "n": n, "req_s": round(n / seconds), "errors": bad, "p50_ms": pct(50), "p90_ms": pct(90),
            "p99_ms": pct(99), "max_ms": round(latencies[-1] * 1000, 1),
            "slow": len(slow), "slow_connections": len({r[0] for r in slow}),
            "slow_seconds": sorted(Counter(round(r[1] - start, 1) for r in slow).most_common(5))}


def wrk(port: int, raw: bytes, conns: int, seconds: float) -> dict:
    out, n, errors = cpuprobe.wrk(port, raw, seconds, conns, latency=True)

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)$", out, re.M).groups()
        return round(float(value) * {"us": 1e-3, "ms": 1, "s": 1e3}[unit], 2)

    return {"client": "wrk", "n": n, "req_s": round(n / seconds), "errors": errors,
            "p50_ms": ms("50"), "p90_ms": ms("90"), "p99_ms": ms("99")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="floor,modelport")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--proto", default="v2", help="v1, v2 or both (v1,v2)")
    ap.add_argument("-c", "--conns", type=int, default=64)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--out", default=str(BENCH / "results"), help="folder for the summary .md ('': print it only)")
    args = ap.parse_args()
    runs = []
    for server in args.servers.split(","):
        floor_python = BENCH / ".venvs" / "floor" / "bin" / "python"
        python = str(floor_python) if server == "floor" and floor_python.exists() else args.python
        proc, http, _grpc, tmp = cpuprobe.start("floor" if server == "floor" else "modelport", MODEL_DIRS[server], python)
        try:
            for proto in args.proto.split(","):
                raw = cpuprobe.request_bytes(proto, "iris", ROWS, http)
                wrk(http, raw, args.conns, 2)  # warm-up
                for rnd in range(args.rounds):
                    for measure in (wrk, recorded):  # turn about, so a noisy spell hits both
                        result = {"server": server, "proto": proto, "round": rnd + 1,
                                  **measure(http, raw, args.conns, args.seconds)}
                        runs.append(result)
                        print(json.dumps(result), flush=True)
        finally:
            cpuprobe.stop(proc)
    lines = [f"# The tail at c={args.conns}: wrk against a recording client ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
             f"`python bench/tail_probe.py {' '.join(sys.argv[1:])}`: [1,4] rows, {args.seconds:g} s per run, the two clients "
             "in turn against the same server. Slow: over 5x the run's p50; where they started (s into the run).", "",
             "| server | proto | round | client | req/s | errors | p50 ms | p90 ms | p99 ms | max ms | slow requests / connections | slow at s |",
             "|---|---|--:|---|--:|--:|--:|--:|--:|--:|---|---|"]
    for r in runs:
        slow = f"{r['slow']} / {r['slow_connections']}" if "slow" in r else ""
        where = ", ".join(f"{s:g}" for s, _ in r.get("slow_seconds", []))
        lines.append(f"| {r['server']} | {r['proto']} | {r['round']} | {r['client']} | {r['req_s']:,} | {r['errors']} | {r['p50_ms']} | {r['p90_ms']} "
                     f"| {r['p99_ms']} | {r.get('max_ms', '')} | {slow} | {where} |")
    for proto in args.proto.split(","):
        for server in args.servers.split(","):
            for client in ("wrk", "recorder"):
                p99 = [r["p99_ms"] for r in runs if (r["server"], r["proto"], r["client"]) == (server, proto, client)]
                lines.append(f"\n{server} {proto}, {client}: p99 median {statistics.median(p99):.1f} ms, "
                             f"range {min(p99):.1f}–{max(p99):.1f}")
    write_summary("\n".join(lines) + "\n", args.out, "tail-probe")


if __name__ == "__main__":
    main()

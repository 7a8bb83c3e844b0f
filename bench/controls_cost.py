#!/usr/bin/env python3
"""What the controls cost on the hot path: the same iris model, auth + rate limits on vs off, in one run.

    python bench/controls_cost.py                          # 5 rounds of 5 s per side (~1 min), 8 connections
    python bench/controls_cost.py --rounds 9 --seconds 8   # a quiet window: steadier medians
    python bench/controls_cost.py --rounds 1 --seconds 1 --warmup 1   # smoke run (proves it works; no claim)

Both servers run at once (the working tree's modelport, this Python, one process each, REST only), each
serving ``iris`` (V2 JSON, one row). "off" has no controls; "on" has an API key (sent as a Bearer
header by wrk) and a per-client and per-model rate limit that is never reached, so every request pays
the whole check: the door lookup, key hashing and compare, the scope check and two token buckets.
Rounds alternate which side goes first, so a noisy neighbour hits both alike. Prints each round, the
medians (req/s, p50/p99, server CPU microseconds per request) and on/off ratios against the 5% target
of issue 19. Needs wrk. Reuses bench/controls.py's wrk driver and its model and settings.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import controls as driver  # noqa: E402 - bench/controls.py: wrk, cpu_seconds, wait_ready, the settings

SIDES = {
    "off": (driver.IRIS, {}, False, -1),
    "on": (driver.IRIS, {**driver.AUTH, **driver.LIMITS}, True, -1),
}


def start(name: str, work: Path, extra: dict) -> tuple[subprocess.Popen, int]:
    model, server, _, _ = SIDES[name]
    server = {**server, **extra}
    folder = work / name
    (folder / "iris").mkdir(parents=True, exist_ok=True)
    (folder / "iris" / "model-settings.json").write_text(json.dumps(model))
    (folder / "settings.json").write_text(json.dumps({**server, "enable_grpc": False, "log_level": "warning"}))
    port = driver.free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH.parent), str(BENCH / "peers")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelport.cli", "serve", str(folder), "--http-port", str(port), "--host", "127.0.0.1"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(work / f"{name}.log", "w"),
    )
    driver.wait_ready(port, proc)
    return proc, port


def measure(name: str, proc: subprocess.Popen, port: int, args: argparse.Namespace, work: Path) -> dict:
    driver.wrk(port, work, SIDES[name], args.warmup, args.connections)
    cpu = driver.cpu_seconds(proc.pid)
    result = driver.wrk(port, work, SIDES[name], args.seconds, args.connections)
    result["cpu_us"] = (driver.cpu_seconds(proc.pid) - cpu) / max(1, result["requests"]) * 1e6
    if result["errors"] or result["status"]:
        raise SystemExit(f"{name}: {result['errors']} socket errors, {result['status']} non-2xx answers: not a fair run")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--loop-budget-ms", type=float, default=None,
                        help="the same loop_budget_ms on both sides (0: hooks always in threads), so the sides differ "
                             "by the controls alone, not by where the loop budget let each one's hooks run")
    args = parser.parse_args()
    extra = {} if args.loop_budget_ms is None else {"loop_budget_ms": args.loop_budget_ms}
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk (Debian: apt-get install wrk)")
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory(prefix="modelport-controls-cost-") as tmp:
        work = Path(tmp)
        servers = {}
        try:
            for name in SIDES:
                servers[name] = start(name, work, extra)
            for round_ in range(args.rounds):
                for name in (("off", "on") if round_ % 2 == 0 else ("on", "off")):
                    r = measure(name, *servers[name], args, work)
                    runs[name].append(r)
                    print(f"[{round_ + 1}] {name:3s} {r['rps']:8.0f} req/s  p50 {r['p50_us'] / 1000:6.2f} ms  "
                          f"p99 {r['p99_us'] / 1000:7.2f} ms  cpu {r['cpu_us']:6.1f} us/req", flush=True)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
            for proc, _ in servers.values():
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
    med = {name: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_us", "p99_us", "cpu_us")}
           for name, rs in runs.items()}
    print(f"\nmedians over {args.rounds} round(s), {args.connections} connections, {args.seconds} s per run:")
    for name, m in med.items():
        print(f"  {name:3s} {m['rps']:8.0f} req/s  p50 {m['p50_us'] / 1000:6.2f} ms  p99 {m['p99_us'] / 1000:7.2f} ms  "
              f"cpu {m['cpu_us']:6.1f} us/req")
    rps = med["on"]["rps"] / med["off"]["rps"]
    cpu = med["on"]["cpu_us"] / med["off"]["cpu_us"]
    print(f"  on/off: req/s {rps:.3f}, server CPU per request {cpu:.3f} "
          f"(target: within 5%: {'yes' if rps >= 0.95 and cpu <= 1.05 else 'no'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

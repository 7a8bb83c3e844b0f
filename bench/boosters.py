"""XGBoost and LightGBM runtimes against their one-thread floors, side by side (issue 24's target:
modelport >= 1.3x the floor's req/s).

The floor is bench/floor_app.py serving the framework's own call (``XGBClassifier.predict_proba``,
LightGBM's ``Booster.predict``) with one thread (BENCH_FLOOR_THREADS=1); modelport serves the same model
folder (bench/train_boosters.py: iris, 100 rounds x 3 classes). Servers alternate floor, modelport,
floor, modelport (--rounds), one at a time, each over the same [1,4] FP32 body (V2 and V1). Each run
reports the server's CPU per request (utime+stime of its process / requests: the figure that survives a
shared machine) and its wall-clock req/s (meaningful only on a quiet machine); the summary gives the
medians and the ratios modelport / floor.

    python bench/boosters.py                  # wrk -t1 -c8, 8 s per run, 2 rounds, V2 and V1
    python bench/boosters.py --wrk 0 -n 5000  # no wrk: N requests from cpuprobe's asyncio client
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cpuprobe  # noqa: E402
from harness.report import write_summary  # noqa: E402

BENCH = Path(__file__).resolve().parent
MODEL_FILES = {"xgboost": "model.json", "lightgbm": "model.txt"}


def model_folder(work: Path, framework: str) -> Path:
    folder = work / f"{framework}-iris"
    if not (folder / MODEL_FILES[framework]).exists():
        subprocess.run([sys.executable, str(BENCH / "train_boosters.py"), str(work)], check=True)
    return folder


def one_run(server: str, framework: str, folder: Path, args) -> list[dict]:
    """Start one server, measure each protocol, stop it."""
    env = {"BENCH_FLOOR_BOOSTER": str(folder / MODEL_FILES[framework]), "BENCH_FLOOR_THREADS": "1"} if server == "floor" else {}
    proc, http, _grpc, tmp = cpuprobe.start(server, str(folder), args.python, env=env)
    rows = [[5.1, 3.5, 1.4, 0.2]]
    results = []
    try:
        for proto in args.proto:
            raw = cpuprobe.request_bytes(proto, "iris", rows, http)
            result = cpuprobe.measure(proc.pid, http, raw, args.n, args.conns, args.wrk)
            results.append({"framework": framework, "server": server, "proto": proto, **result})
            print(json.dumps(results[-1]), flush=True)
    finally:
        cpuprobe.stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def summary(runs: list[dict], args) -> str:
    lines = [
        f"# XGBoost and LightGBM runtimes against their one-thread floors ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "",
        f"`python bench/boosters.py {' '.join(sys.argv[1:])}`: {args.rounds} rounds (floor, modelport, ...), "
        + (f"wrk -t1 -c{args.conns} for {args.wrk:g} s per run" if args.wrk else f"{args.n} requests over {args.conns} connections per run")
        + "; one [1,4] FP32 row; floor = bench/floor_app.py with BENCH_FLOOR_THREADS=1. Medians over the rounds.",
        "",
        "| runtime | proto | floor CPU µs/req | modelport CPU µs/req | CPU floor ÷ modelport | floor req/s | modelport req/s | req/s modelport ÷ floor |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for framework in args.frameworks:
        for proto in args.proto:
            pick = {s: [r for r in runs if r["framework"] == framework and r["proto"] == proto and r["server"] == s] for s in ("floor", "modelport")}
            if not pick["floor"] or not pick["modelport"]:
                continue
            cpu = {s: statistics.median(r["cpu_us_per_req"] for r in pick[s]) for s in pick}
            rps = {s: statistics.median(r["req_s_wall"] for r in pick[s]) for s in pick}
            lines.append(f"| {framework} | {proto} | {cpu['floor']:.1f} | {cpu['modelport']:.1f} | {cpu['floor'] / cpu['modelport']:.2f}x "
                         f"| {rps['floor']:,.0f} | {rps['modelport']:,.0f} | {rps['modelport'] / rps['floor']:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    csv = lambda s: [x for x in s.split(",") if x]  # noqa: E731
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frameworks", type=csv, default=["xgboost", "lightgbm"])
    ap.add_argument("--proto", type=csv, default=["v2", "v1"])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--wrk", type=float, default=8, help="seconds of wrk -t1 per run (0: cpuprobe's client sends -n requests)")
    ap.add_argument("-n", type=int, default=5000)
    ap.add_argument("-c", "--conns", type=int, default=8)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--work", type=Path, default=BENCH / ".work")
    ap.add_argument("--out", default=str(BENCH / "results"), help="folder for the summary .md ('': print it only)")
    args = ap.parse_args()
    runs: list[dict] = []
    for framework in args.frameworks:
        folder = model_folder(args.work, framework)
        for _ in range(args.rounds):
            for server in ("floor", "modelport"):
                runs += one_run(server, framework, folder, args)
    write_summary(summary(runs, args), args.out, "boosters")


if __name__ == "__main__":
    main()

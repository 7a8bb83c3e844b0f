"""The gRPC stacks a Python server can stand on, side by side (issue 24: "if grpc.aio cannot get there,
measure the alternatives"): grpc.aio (what modelport and KServe use), grpc's sync server (a thread pool)
and grpclib (asyncio + h2, pure Python), each answering ModelInfer

- canned: a prebuilt response, nothing decoded: the stack's own cost per call;
- stub: FP32 contents -> numpy -> a constant answer -> response proto (BENCH_FLOOR_STUB=1);
- predict: the same with the iris scikit-learn ``predict`` (the gRPC floor of ``bench/run.py``),

next to modelport serving the user's class (``bench/models/iris``) and its stub (``bench/models/iris-stub``).
Each run is bench/cpuprobe.py's h2load load (one thread, one stream per connection, the bench's [1,4]
FP32 ModelInfer) for ``--seconds`` at each of ``--conns``, after one checked call from a real grpc.aio
client; then ``h2load -c1`` for the unloaded round trip (the mean of h2load's "time for request").
Servers run one at a time, the whole list ``--rounds`` times; medians over the rounds.

    python bench/grpc_stacks.py                       # ~6 min: 9 servers x 2 rounds x (c=8, c=64, c=1)
    python bench/grpc_stacks.py --servers grpc-canned,grpc-canned-grpclib --rounds 1 --seconds 2

grpclib is not a dependency of modelport or of the bench venvs: it is installed once with
``pip install --target bench/.work/grpclib grpclib`` (from the package index) and put on PYTHONPATH
for its servers only.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import cpuprobe  # noqa: E402
from harness.report import write_summary  # noqa: E402

ROWS = [[5.1, 3.5, 1.4, 0.2]]
# name: (cpuprobe --server, model folder, extra environment, what it is)
SERVERS = {
    "grpc-canned": ("grpc-canned-generic", None, {}, "grpc.aio, canned answer"),
    "grpc-canned-sync": ("grpc-canned-sync", None, {}, "grpc sync server, canned answer"),
    "grpc-canned-grpclib": ("grpc-canned-grpclib", None, {}, "grpclib, canned answer"),
    "grpc-stub": ("grpc-floor-generic", None, {"BENCH_FLOOR_STUB": "1"}, "grpc.aio, decode + constant + encode"),
    "grpc-stub-grpclib": ("grpc-floor-grpclib", None, {"BENCH_FLOOR_STUB": "1"}, "grpclib, decode + constant + encode"),
    "grpc-floor": ("grpc-floor-generic", None, {}, "grpc.aio + iris predict (the gRPC floor)"),
    "grpc-floor-grpclib": ("grpc-floor-grpclib", None, {}, "grpclib + iris predict"),
    "modelport-stub": ("modelport", "bench/models/iris-stub", {}, "modelport, the user's class answering a constant"),
    "modelport": ("modelport", "bench/models/iris", {}, "modelport, the user's class calling predict"),
}


def grpclib_path(work: Path) -> Path:
    target = work / "grpclib"
    if not (target / "grpclib").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(target), "grpclib"], check=True)
    return target


def latency_c1(port: int, seconds: float) -> dict:
    """One connection, one call at a time: h2load's mean time per call and its deviation (µs)."""
    out = cpuprobe.h2load(port, ROWS, seconds, 1)
    line = next((x for x in out.splitlines() if x.startswith("time for request")), None)
    if line is None:
        raise SystemExit(f"h2load failed: {out[-800:]}")

    def us(text: str) -> float:  # h2load writes 271us, 13.78ms or 1.02s
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
        return float(number) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]

    _low, _high, mean, sd, _within = line.split(":", 1)[1].split()
    return {"mean_us": round(us(mean)), "sd_us": round(us(sd))}


def one_run(name: str, args: argparse.Namespace, extra_path: str) -> list[dict]:
    server, folder, env, _ = SERVERS[name]
    if server.endswith("-grpclib"):
        env = {**env, "PYTHONPATH": extra_path}
    proc, _http, port, tmp = cpuprobe.start(server, str(BENCH.parent / folder) if folder else None, args.python, env=env)
    pid = proc.pid
    results = []
    try:
        for conns in args.conns:
            result = cpuprobe.measure_grpc(pid, port, ROWS, 0, conns, False, args.seconds)
            results.append({"server": name, "conns": conns, **result})
            print(json.dumps(results[-1]), flush=True)
        results.append({"server": name, "conns": 1, **latency_c1(port, args.seconds)})
        print(json.dumps(results[-1]), flush=True)
    finally:
        cpuprobe.stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def summary(runs: list[dict], args: argparse.Namespace) -> str:
    lines = [
        f"# gRPC stacks side by side ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "",
        f"`python bench/grpc_stacks.py {' '.join(sys.argv[1:])}`: {args.rounds} rounds over the servers, one at a time; "
        f"h2load -t1 -m1 for {args.seconds:g} s per load; one [1,4] FP32 ModelInfer (`contents`). Medians over the rounds. "
        "CPU: the server process's utime+stime ÷ calls.",
        "",
        "| server | what | " + " | ".join(f"c={c} req/s | c={c} CPU µs/call" for c in args.conns) + " | c=1 mean µs |",
        "|---|---|" + "--:|--:|" * len(args.conns) + "--:|",
    ]
    for name in args.servers:
        cells = []
        for conns in args.conns:
            pick = [r for r in runs if r["server"] == name and r["conns"] == conns]
            cells += [f"{statistics.median(r['req_s_wall'] for r in pick):,.0f}", f"{statistics.median(r['cpu_us_per_req'] for r in pick):.0f}"] if pick else ["-", "-"]
        c1 = [r["mean_us"] for r in runs if r["server"] == name and r["conns"] == 1]
        latency = f"{statistics.median(c1):.0f}" if c1 else "-"
        lines.append(f"| {name} | {SERVERS[name][3]} | " + " | ".join(cells) + f" | {latency} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    csv = lambda s: [x for x in s.split(",") if x]  # noqa: E731
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", type=csv, default=list(SERVERS))
    ap.add_argument("--conns", type=lambda s: [int(x) for x in csv(s)], default=[8, 64])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--work", type=Path, default=BENCH / ".work")
    ap.add_argument("--out", default=str(BENCH / "results"), help="folder for the summary .md ('': print it only)")
    args = ap.parse_args()
    unknown = [s for s in args.servers if s not in SERVERS]
    if unknown:
        raise SystemExit(f"unknown servers {unknown}; pick from {', '.join(SERVERS)}")
    extra_path = str(grpclib_path(args.work)) if any(SERVERS[s][0].endswith("-grpclib") for s in args.servers) else ""
    runs: list[dict] = []
    for _ in range(args.rounds):
        for name in args.servers:
            runs += one_run(name, args, extra_path)
    write_summary(summary(runs, args), args.out, "grpc-stacks")


if __name__ == "__main__":
    main()

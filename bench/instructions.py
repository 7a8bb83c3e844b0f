"""Instructions per request under valgrind's callgrind: what each layer of a request costs, in a figure
that a noisy machine does not move (±1 % run to run, where req/s and CPU time move 10-30 %).

Every server answers a constant (no scikit-learn), so the figures are the servers' own work:

- ``raw-floor``: the floor's parse and encode called from httptools' callbacks (bench/raw_floor.py);
- ``lean-floor``: the floor's ASGI app behind the leanest ASGI front end (bench/lean_asgi.py): a scope,
  a task, receive and send per request; lean-floor - raw-floor = the ASGI contract's own price;
- ``floor``: the same work as a uvicorn ASGI app (bench/floor_app.py); floor - lean-floor = what uvicorn's
  cycle costs beyond that contract;
- ``modelport``: a user's class (bench/models/iris-stub); modelport - floor = modelport's layers;
- gRPC: ``grpc-canned`` (grpc.aio alone), ``grpc-floor`` (grpc.aio + decode + encode) and modelport.

Each is ``bench/cpuprobe.py --callgrind`` (N requests over 8 connections from its asyncio or grpc.aio
client, counted only while they run) with BENCH_FLOOR_STUB=1 for the floors. ~5 min.

    python bench/instructions.py                    # writes results/<stamp>-instructions.md
    python bench/instructions.py --cases v2 -n 500 --out ''
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from harness.report import write_summary  # noqa: E402

FLOOR_PYTHON = BENCH / ".venvs" / "floor" / "bin" / "python"

# case: [(label, cpuprobe arguments, extra environment)]
CASES = {
    "v1": [("raw-floor", ["--server", "raw-floor"], True), ("lean-floor", ["--server", "lean-floor"], True),
           ("floor", ["--server", "floor"], True),
           ("modelport", ["--server", "modelport", "--model-dir", "bench/models/iris-stub"], False)],
    "v2": [("raw-floor", ["--server", "raw-floor"], True), ("lean-floor", ["--server", "lean-floor"], True),
           ("floor", ["--server", "floor"], True),
           ("modelport", ["--server", "modelport", "--model-dir", "bench/models/iris-stub"], False)],
    "grpc": [("grpc-canned", ["--server", "grpc-canned-generic"], False), ("grpc-floor", ["--server", "grpc-floor-generic"], True),
             ("modelport", ["--server", "modelport", "--model-dir", "bench/models/iris-stub"], False)],
}


def count(case: str, args: list[str], stub: bool, n: int, python: str) -> int:
    env = dict(os.environ, **({"BENCH_FLOOR_STUB": "1"} if stub else {}))
    server_python = str(FLOOR_PYTHON) if args[1] in ("floor", "raw-floor", "lean-floor") and FLOOR_PYTHON.exists() else python
    with tempfile.TemporaryDirectory(prefix="instructions-") as tmp:
        out = subprocess.run([python, str(BENCH / "cpuprobe.py"), *args, "--python", server_python, "--proto", case,
                              "-n", str(n), "-c", "8", "--callgrind", str(Path(tmp) / "callgrind.out")],
                             env=env, cwd=BENCH.parent, capture_output=True, text=True, timeout=1800)
    lines = [x for x in out.stdout.splitlines() if x.startswith("{")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"cpuprobe failed for {case} {args}: {out.stderr[-1500:]}")
    result = json.loads(lines[-1])
    if set(result["statuses"]) - {"200", "OK"}:
        raise SystemExit(f"{case} {args}: not every request succeeded: {result['statuses']}")
    return result["instructions_per_req"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="v1,v2,grpc")
    ap.add_argument("-n", type=int, default=2000, help="requests counted per server")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--out", default=str(BENCH / "results"), help="folder for the summary .md ('': print it only)")
    args = ap.parse_args()
    lines = [
        f"# Instructions per request, servers answering a constant ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "",
        f"`python bench/instructions.py {' '.join(sys.argv[1:])}`: callgrind's instruction count over {args.n} requests "
        "(8 connections, one [1,4] FP32 row) ÷ requests; everything the server process runs, kernel excluded.",
        "",
        "| case | server | instructions / request | over the one above |",
        "|---|---|--:|--:|",
    ]
    for case in args.cases.split(","):
        previous = None
        for label, probe_args, stub in CASES[case]:
            value = count(case, probe_args, stub, args.n, args.python)
            print(json.dumps({"case": case, "server": label, "instructions_per_req": value}), flush=True)
            lines.append(f"| {case} | {label} | {value:,} | {'' if previous is None else f'+{value - previous:,}'} |")
            previous = value
    write_summary("\n".join(lines) + "\n", args.out, "instructions")


if __name__ == "__main__":
    main()

"""What Ray Serve costs per request: modelport alone against modelport on Ray (1 and 2 replicas).

Same iris LogisticRegression, same V2 REST request ([1,4] FP32), `wrk -t1 -cN` for a fixed time, servers
alternated in rounds (A B C A B C) because the machine is noisy; the report gives medians, ratios to
modelport alone, and the CPU the whole server process tree spent per request (Ray's processes included).

    python bench/ray_bench.py [--rounds 2] [--seconds 10] [--conns 8]

Needs modelport with the ray and sklearn extras in the running Python, and wrk (Debian package).
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
BODY = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [6.7, 3.0, 5.2, 2.3]}]})
SERVERS = {"modelport": None, "ray-1": 1, "ray-2": 2}


def make_folder(root: Path, replicas: int | None) -> Path:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    folder = root / f"models-{replicas or 0}" / "iris"
    folder.mkdir(parents=True)
    x, y = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=1000).fit(x, y), folder / "model.joblib")
    settings = {"name": "iris", "implementation": "sklearn",
                "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}]}
    if replicas:
        settings["ray"] = {"num_replicas": replicas, "ray_actor_options": {"num_cpus": 0.5}}
    (folder / "model-settings.json").write_text(json.dumps(settings))
    return folder.parent


def one_run(name: str, replicas: int | None, folder: Path, args, work: Path) -> dict:
    port = procs.free_port()
    argv = [sys.executable, "-m", "modelport.cli", "serve", str(folder), "--host", "127.0.0.1", "--http-port", str(port),
            "--enable-grpc", "false", "--log-level", "warning"]
    if replicas:
        argv += ["--ray"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_DEDUP_LOGS": "0"}
    server = procs.ServerProcess(argv, env, REPO, work / f"{name}-{time.time_ns()}.log")
    server.start()
    try:
        started = server.wait_ready(f"http://127.0.0.1:{port}/v2/health/ready", timeout=180)
        url = f"http://127.0.0.1:{port}/v2/models/iris/infer"
        lua = load.write_lua(work / "iris.lua", BODY)
        load.run_wrk(url, lua, args.conns, 3)  # warm-up (and Serve's routers learn the replicas)
        cpu0 = procs.tree_cpu_seconds(server.pid)
        result = load.run_wrk(url, lua, args.conns, args.seconds)
        cpu = procs.tree_cpu_seconds(server.pid) - cpu0
        result.update(server=name, ready_s=started, cpu_us_per_request=cpu / max(result["requests"], 1) * 1e6)
        return result
    finally:
        server.stop(grace=30)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--conns", type=int, default=8)
    args = parser.parse_args(argv)
    load.ensure_tools()
    work = Path(tempfile.mkdtemp(prefix="modelport-ray-bench-"))
    folders = {name: make_folder(work, replicas) for name, replicas in SERVERS.items()}
    runs = []
    for rnd in range(args.rounds):
        for name, replicas in SERVERS.items():
            run = one_run(name, replicas, folders[name], args, work)
            run["round"] = rnd
            runs.append(run)
            print(f"round {rnd} {name:10s} {run['rps']:8.0f} req/s  p50 {run['p50_ms']:6.2f} ms  p99 {run['p99_ms']:6.2f} ms  "
                  f"cpu {run['cpu_us_per_request']:7.0f} µs/req  errors {run['errors']}  ready {run['ready_s']:.1f} s", flush=True)
    alone = statistics.median(r["rps"] for r in runs if r["server"] == "modelport")
    lines = [f"iris V2 REST [1,4], wrk -t1 -c{args.conns}, {args.seconds} s, {args.rounds} rounds (medians)", "",
             "| server | req/s | vs alone | p50 ms | p99 ms | CPU µs/req (whole tree) | errors | ready s |", "|---|---|---|---|---|---|---|---|"]
    for name in SERVERS:
        mine = [r for r in runs if r["server"] == name]
        med = lambda key: statistics.median(r[key] for r in mine)  # noqa: E731
        lines.append(f"| {name} | {med('rps'):.0f} | {med('rps') / alone:.2f}× | {med('p50_ms'):.2f} | {med('p99_ms'):.2f} | "
                     f"{med('cpu_us_per_request'):.0f} | {sum(r['errors'] for r in mine)} | {med('ready_s'):.1f} |")
    report = "\n".join(lines)
    print("\n" + report)
    out = REPO / "bench" / "results" / f"{time.strftime('%Y-%m-%d-%H%M%S')}-ray"
    out.with_suffix(".md").write_text(report + "\n")
    out.with_suffix(".json").write_text(json.dumps(runs, indent=1))
    print(f"\nwrote {out}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

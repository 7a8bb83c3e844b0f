"""modelport on Ray Serve against a plain one-deployment Ray Serve app, side by side, with Ray's knobs.

Same iris LogisticRegression, same V2 JSON body ([1,4] FP32), `wrk -t1 -cN` for a fixed time after a
warm-up; the candidates alternate in rounds (A B C ... A B C) because the machine is noisy. Each Ray
knob variant runs for both apps (the same knob on both): "default" is each app as shipped (modelport on
Ray: max_ongoing_requests 64; plain Ray Serve: Ray's 5), then max_ongoing_requests 5 and 64 on both,
a replica of 0.5 CPU, proxies on the head node only, and Ray's two thread/loop env levers off.
The report gives medians, modelport-on-Ray / plain-Ray ratios (req/s: ≥ 1.0 is as good; p50: ≤ 1.0),
modelport alone for scale, and the CPU the whole server process tree spent per request.

    python bench/ray_bench.py [--rounds 2] [--seconds 10] [--conns 8] [--variants default,ongoing5,...]

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
# Ray's knobs: deployment options, Ray/Serve start options, and environment, applied alike to both apps.
VARIANTS = {
    "default": {},
    "ongoing5": {"options": {"max_ongoing_requests": 5}},
    "ongoing64": {"options": {"max_ongoing_requests": 64}},
    "cpu0.5": {"options": {"ray_actor_options": {"num_cpus": 0.5}}},
    "headonly": {"proxy_location": "HeadOnly"},
    "samethread": {"env": {"RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0", "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0"}},
}


def make_folder(root: Path) -> Path:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    folder = root / "models" / "iris"
    folder.mkdir(parents=True)
    x, y = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=1000).fit(x, y), folder / "model.joblib")
    settings = {"name": "iris", "implementation": "sklearn",
                "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}]}
    (folder / "model-settings.json").write_text(json.dumps(settings))
    return folder.parent


def argv_for(app: str, variant: dict, folder: Path, port: int) -> list[str]:
    options: dict | None = {"ray_actor_options": {"num_cpus": 1}, **variant.get("options", {})}
    if app == "modelport-ray" and "options" not in variant:
        options = None  # as shipped: modelport's own Ray defaults
    if app == "plain-ray":
        argv = [sys.executable, str(REPO / "bench" / "ray_plain_app.py"), str(folder / "iris" / "model.joblib"), str(port),
                "--options", json.dumps(options)]
        return argv + (["--proxy-location", variant["proxy_location"]] if "proxy_location" in variant else [])
    argv = [sys.executable, "-m", "modelport.cli", "serve", str(folder), "--host", "127.0.0.1", "--http-port", str(port),
            "--enable-grpc", "false", "--log-level", "warning"]
    if app == "modelport-ray":
        argv += ["--ray"] + (["--ray-options", json.dumps(options)] if options is not None else [])
        argv += ["--ray-proxy-location", variant["proxy_location"]] if "proxy_location" in variant else []
    return argv


def one_run(app: str, variant_name: str, folder: Path, args, work: Path) -> dict:
    variant = VARIANTS[variant_name]
    port = procs.free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_DEDUP_LOGS": "0", **variant.get("env", {})}
    server = procs.ServerProcess(argv_for(app, variant, folder, port), env, REPO, work / f"{app}-{variant_name}-{time.time_ns()}.log")
    server.start()
    try:
        ready_path = "/" if app == "plain-ray" else "/v2/health/ready"
        started = server.wait_ready(f"http://127.0.0.1:{port}{ready_path}", timeout=180)
        url = f"http://127.0.0.1:{port}/v2/models/iris/infer"
        lua = load.write_lua(work / "iris.lua", BODY)
        load.run_wrk(url, lua, args.conns, args.warmup)  # warm-up (and Serve's routers learn the replicas)
        cpu0 = procs.tree_cpu_seconds(server.pid)
        result = load.run_wrk(url, lua, args.conns, args.seconds)
        cpu = procs.tree_cpu_seconds(server.pid) - cpu0
        result.update(app=app, variant=variant_name, ready_s=started, cpu_us_per_request=cpu / max(result["requests"], 1) * 1e6)
        return result
    finally:
        server.stop(grace=30)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--conns", type=int, default=8)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: " + ", ".join(VARIANTS))
    parser.add_argument("--no-alone", action="store_true", help="skip modelport alone (the scale reference)")
    parser.add_argument("--smoke", action="store_true", help="a proof that the script runs: no results file")
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(sorted(unknown))}")
    load.ensure_tools()
    work = Path(tempfile.mkdtemp(prefix="modelport-ray-bench-"))
    folder = make_folder(work)
    candidates = [] if args.no_alone else [("modelport", "default")]
    candidates += [(app, v) for v in variants for app in ("plain-ray", "modelport-ray")]
    runs = []
    for rnd in range(args.rounds):
        for app, variant in candidates:
            run = one_run(app, variant, folder, args, work)
            run["round"] = rnd
            runs.append(run)
            print(f"round {rnd} {app:14s} {variant:10s} {run['rps']:8.0f} req/s  p50 {run['p50_ms']:6.2f} ms  "
                  f"p99 {run['p99_ms']:6.2f} ms  cpu {run['cpu_us_per_request']:7.0f} µs/req  errors {run['errors']}  "
                  f"ready {run['ready_s']:.1f} s", flush=True)

    def med(app: str, variant: str, key: str) -> float:
        return statistics.median(r[key] for r in runs if r["app"] == app and r["variant"] == variant)

    mode = " (SMOKE RUN: not a measurement)" if args.smoke else ""
    lines = [f"iris V2 REST [1,4] FP32, wrk -t1 -c{args.conns}, {args.seconds} s after {args.warmup} s warm-up, "
             f"{args.rounds} round(s), medians{mode}", "",
             "| app | Ray knobs | req/s | p50 ms | p99 ms | CPU µs/req (tree) | errors | ready s |", "|---|---|---|---|---|---|---|---|"]
    for app, variant in candidates:
        mine = [r for r in runs if r["app"] == app and r["variant"] == variant]
        lines.append(f"| {app} | {variant} | {med(app, variant, 'rps'):.0f} | {med(app, variant, 'p50_ms'):.2f} | "
                     f"{med(app, variant, 'p99_ms'):.2f} | {med(app, variant, 'cpu_us_per_request'):.0f} | "
                     f"{sum(r['errors'] for r in mine)} | {med(app, variant, 'ready_s'):.1f} |")
    lines += ["", "modelport on Ray / plain Ray Serve (same knobs; on 'default' each as shipped): req/s ≥ 1.00 and p50 ≤ 1.00 "
              "meet issue 22's bar", "",
              "| Ray knobs | req/s ratio | p50 ratio | p99 ratio |", "|---|---|---|---|"]
    for v in variants:
        ratio = {k: med("modelport-ray", v, k) / max(med("plain-ray", v, k), 1e-9) for k in ("rps", "p50_ms", "p99_ms")}
        lines.append(f"| {v} | {ratio['rps']:.2f} | {ratio['p50_ms']:.2f} | {ratio['p99_ms']:.2f} |")
    report = "\n".join(lines)
    print("\n" + report)
    if not args.smoke:
        out = REPO / "bench" / "results" / f"{time.strftime('%Y-%m-%d-%H%M%S')}-ray"
        out.with_suffix(".md").write_text(report + "\n")
        out.with_suffix(".json").write_text(json.dumps(runs, indent=1))
        print(f"\nwrote {out}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

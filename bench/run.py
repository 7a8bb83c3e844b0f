#!/usr/bin/env python3
"""modelport side-by-side benchmark: one command, from a fresh clone.

    python bench/run.py              # full run: all servers, V1/V2 REST + gRPC, 1 and 32 rows, 1/8/64 conns
    python bench/run.py --quick      # smoke run (about 3 minutes)
    python bench/run.py --scenario health   # worker-pool health: 50 ms CPU model under load + /v2/health/live probe

Creates the virtualenvs it needs (bench/.venvs/), trains the iris model once (bench/.work/), then
starts each server alone, drives it with wrk / h2load, stops it, and alternates servers in rounds.
Writes bench/results/<stamp>.md and .json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import platform
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import envs, load, procs, report, servers

BENCH = envs.BENCH
WORK = BENCH / ".work"
V1_PATH = "/v1/models/iris:predict"
V2_PATH = "/v2/models/iris/infer"
GRPC_PATH = "/inference.GRPCInferenceService/ModelInfer"
GRPC_STREAM_PATH = "/inference.GRPCInferenceService/ModelStreamInfer"
READY_PATH = "/v2/health/ready"
LIVE_PATH = "/v2/health/live"


def log(msg: str) -> None:
    print(msg, flush=True)


# -- setup -------------------------------------------------------------------------------------------
def setup(config_names: list[str], need_grpc: bool, skip_install: bool) -> list[str]:
    """Venvs, load tools, model and payloads. Returns the configs that can run."""
    load.ensure_tools(log)
    wanted = {servers.CONFIGS[n].venv for n in config_names} | {"floor"}  # floor trains the model
    if need_grpc:
        wanted.add("kserve")  # its generated V2 stubs build the gRPC frames
    ok = set()
    for venv in sorted(wanted):
        if skip_install:
            if envs.python(venv).exists():
                ok.add(venv)
            continue
        try:
            if envs.ensure(venv, log):
                ok.add(venv)
        except subprocess.CalledProcessError as exc:
            log(f"[setup] {venv}: install failed ({exc}); its configs are skipped")
    runnable = [n for n in config_names if servers.CONFIGS[n].venv in ok]
    for n in config_names:
        if n not in runnable:
            log(f"[setup] skipping {n}: venv {servers.CONFIGS[n].venv} unavailable")
    if "floor" not in ok:
        raise SystemExit("the floor venv is required (it trains the model)")
    return runnable


def prepare_payloads(row_counts: list[int], need_grpc: bool, retrain: bool, stream_depth: int = 0) -> dict:
    joblib_path = WORK / "iris.joblib"
    if retrain or not joblib_path.exists():
        subprocess.run([str(envs.python("floor")), str(BENCH / "train_iris.py"), str(WORK)], check=True)
    rows = json.loads((WORK / "iris_rows.json").read_text())["rows"]
    payloads = {"joblib": joblib_path, "bodies": {}, "lua": {}, "frames": {}, "stream_frames": {},
                "stream_depth": stream_depth}
    for n in row_counts:
        x = rows[:n]
        v1 = json.dumps({"instances": x}, separators=(",", ":"))
        v2 = json.dumps({"inputs": [{"name": "input-0", "shape": [n, 4], "datatype": "FP32",
                                     "data": [v for r in x for v in r]}]}, separators=(",", ":"))
        payloads["bodies"][("v1", n)] = v1
        payloads["bodies"][("v2", n)] = v2
        payloads["lua"][("v1", n)] = load.write_lua(WORK / "lua" / f"v1-{n}.lua", v1)
        payloads["lua"][("v2", n)] = load.write_lua(WORK / "lua" / f"v2-{n}.lua", v2)
        if need_grpc:
            frame = WORK / "grpc" / f"infer-{n}.bin"
            frame.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([str(envs.python("kserve")), str(BENCH / "grpc_tool.py"), "frame",
                            "--rows-file", str(WORK / "iris_rows.json"), "--rows", str(n), "--out", str(frame)],
                           check=True)
            payloads["frames"][n] = frame
            if stream_depth:  # one ModelStreamInfer body: stream_depth requests back to back
                stream = WORK / "grpc" / f"stream-{n}x{stream_depth}.bin"
                subprocess.run([str(envs.python("kserve")), str(BENCH / "grpc_tool.py"), "frame", "--repeat",
                                str(stream_depth), "--rows-file", str(WORK / "iris_rows.json"), "--rows", str(n),
                                "--out", str(stream)], check=True)
                payloads["stream_frames"][n] = stream
    return payloads


def peer_versions(config_names: list[str]) -> dict:
    pkgs = {
        "kserve": ["kserve", "scikit-learn", "numpy", "fastapi", "uvicorn", "grpcio", "uvloop"],
        "mlserver": ["mlserver", "mlserver-sklearn", "scikit-learn", "numpy", "fastapi", "uvicorn", "grpcio", "uvloop"],
        "floor": ["uvicorn", "httptools", "uvloop", "orjson", "scikit-learn", "numpy"],
        "modelport": ["modelport", "scikit-learn", "numpy", "uvicorn", "grpcio", "uvloop", "orjson"],
        "litserve": ["litserve", "scikit-learn", "numpy", "fastapi", "uvicorn", "uvloop", "pyzmq"],
        "bentoml": ["bentoml", "scikit-learn", "numpy", "starlette", "uvicorn", "uvloop"],
        "rayserve": ["ray", "scikit-learn", "numpy", "starlette", "uvicorn", "uvloop"],
    }
    out = {}
    for venv in sorted({servers.CONFIGS[n].venv for n in config_names}):
        out[venv] = envs.versions(venv, pkgs[venv])
    sk = {v.get("scikit-learn") for v in out.values() if v.get("scikit-learn")}
    if len(sk) > 1:
        log(f"[warn] scikit-learn differs between venvs ({sorted(sk)}); the joblib was trained with the floor's")
    return out


# -- one server --------------------------------------------------------------------------------------
def start_server(name: str, args, payloads, scenario: str, rnd: int) -> tuple[procs.ServerProcess, servers.Ctx, float]:
    cfg = servers.CONFIGS[name]
    work = WORK / "runs" / f"{scenario}-{name}-r{rnd}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ctx = servers.Ctx(
        http_port=procs.free_port(), grpc_port=procs.free_port(), metrics_port=procs.free_port(),
        work=work, joblib=payloads["joblib"], scenario=scenario,
        extra_settings=dict(args.extra_settings.get(name, {})), extra_flags=list(args.extra_flags.get(name, [])),
    )
    if scenario == "health":
        ctx.extra_settings.setdefault("burn_ms", args.burn_ms)
    argv = cfg.build(ctx)
    (work / "argv.json").write_text(json.dumps(argv))
    proc = procs.ServerProcess(argv, servers.server_env(cfg, ctx), cwd=work, log_path=work / "server.log")
    proc.start()
    try:
        cold = proc.wait_ready(f"http://127.0.0.1:{ctx.http_port}{cfg.ready_path}", args.ready_timeout)
    except BaseException:  # also Ctrl-C: never leave a server behind
        proc.stop()
        raise
    return proc, ctx, cold


def check_rest(port: int, proto: str, rows: int, body: str) -> None:
    """One request before the load: it must be 200 and carry `rows` predictions."""
    path = V1_PATH if proto == "v1" else V2_PATH
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body.encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, text = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{proto} check: HTTP {exc.code}: {exc.read()[:200]!r}") from None
    doc = json.loads(text)
    n = len(doc["predictions"]) if proto == "v1" else doc["outputs"][0]["shape"][0]
    if status != 200 or n != rows:
        raise RuntimeError(f"{proto} check: status {status}, {n} predictions for {rows} rows")


def check_grpc(port: int, frame: Path, rows: int, stream: bool = False) -> None:
    res = subprocess.run([str(envs.python("kserve")), str(BENCH / "grpc_tool.py"), "check-stream" if stream else "check",
                          "--target", f"127.0.0.1:{port}", "--frame", str(frame)],
                         capture_output=True, text=True, timeout=60, check=False)
    doc = json.loads(res.stdout.strip().splitlines()[-1]) if res.stdout.strip() else {"error": res.stderr[-300:]}
    if res.returncode != 0 or "error" in doc:
        raise RuntimeError(f"grpc check: {doc.get('error')}")
    shape = doc["outputs"][0]["shape"]
    if shape[0] != rows:
        raise RuntimeError(f"grpc check: output shape {shape} for {rows} rows")


def drive(proto: str, rows: int, conns: int, seconds: int, ctx: servers.Ctx, payloads, tag: str) -> dict:
    if proto == "grpc":
        url = f"http://127.0.0.1:{ctx.grpc_port}{GRPC_PATH}"
        return load.run_h2load(url, payloads["frames"][rows], conns, seconds, ctx.work / f"h2load-{tag}.log")
    if proto == "grpc-stream":  # each h2load request is one stream of `depth` inference requests
        url = f"http://127.0.0.1:{ctx.grpc_port}{GRPC_STREAM_PATH}"
        result = load.run_h2load(url, payloads["stream_frames"][rows], conns, seconds, ctx.work / f"h2load-{tag}.log")
        depth = payloads["stream_depth"]
        result.update(streams=result["requests"], requests=result["requests"] * depth, rps=result["rps"] * depth,
                      stream_depth=depth)  # p50/p99 stay per stream (all `depth` answers)
        return result
    return load.run_wrk(rest_url(proto, ctx), payloads["lua"][(proto, rows)], conns, seconds)


def rest_url(proto: str, ctx: servers.Ctx) -> str:
    return f"http://127.0.0.1:{ctx.http_port}{V1_PATH if proto == 'v1' else V2_PATH}"


def recorded_latency(proto: str, rows: int, conns: int, seconds: int, ctx: servers.Ctx, payloads) -> dict:
    """The same load from the recording client (harness/load.py), in the floor venv for its uvloop:
    wrk's p99 at c=64 swings tenfold between runs against one server here, this one's holds."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from harness import load; "
            "print(json.dumps(load.run_recorder(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))))")
    res = subprocess.run([str(envs.python("floor")), "-c", code, str(BENCH), rest_url(proto, ctx),
                          payloads["bodies"][(proto, rows)], str(conns), str(seconds)],
                         capture_output=True, text=True, timeout=seconds + 60, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"recording client: {res.stderr.strip()[-300:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def measured(proc: procs.ServerProcess, fn) -> dict:
    """Run `fn` (one load run) and add the server tree's CPU per request and memory after it."""
    cpu0 = procs.tree_cpu_seconds(proc.pid)
    result = fn()
    cpu = procs.tree_cpu_seconds(proc.pid) - cpu0
    mem = procs.tree_memory_bytes(proc.pid)
    result["server_cpu_s"] = cpu
    result["cpu_us_per_req"] = cpu / result["requests"] * 1e6 if result["requests"] else None
    result["rss_mib"] = mem["rss"] / 2**20
    result["pss_mib"] = mem["pss"] / 2**20
    return result


def infer_session(name: str, args, payloads, rnd: int, runs: list, starts: list) -> None:
    cfg = servers.CONFIGS[name]
    cases = [(p, r, c) for p in args.protocols if p in cfg.protocols for r in args.rows for c in args.conns]
    base = {"server": name, "peer": cfg.peer, "round": rnd}
    try:
        proc, ctx, cold = start_server(name, args, payloads, "infer", rnd)
    except Exception as exc:  # noqa: BLE001 - recorded in the report, the run goes on
        log(f"  {name}: failed to start: {exc}")
        starts.append({**base, "error": str(exc)})
        runs.extend({**base, "proto": p, "rows": r, "conns": c, "error": f"start: {exc}"[:300]} for p, r, c in cases)
        return
    starts.append({**base, "cold_start_s": cold, **{k + "_idle": v for k, v in procs.tree_memory_bytes(proc.pid).items()}})
    log(f"  {name}: ready in {cold:.2f}s (pid {proc.pid}, http {ctx.http_port}, grpc {ctx.grpc_port})")
    try:
        checked: dict[tuple, str | None] = {}
        for proto, rows, conns in cases:
            entry = {**base, "proto": proto, "rows": rows, "conns": conns}
            if (proto, rows) not in checked:
                try:
                    if proto == "grpc":
                        check_grpc(ctx.grpc_port, payloads["frames"][rows], rows)
                    elif proto == "grpc-stream":
                        check_grpc(ctx.grpc_port, payloads["stream_frames"][rows], rows, stream=True)
                    else:
                        check_rest(ctx.http_port, proto, rows, payloads["bodies"][(proto, rows)])
                    checked[(proto, rows)] = None
                except Exception as exc:  # noqa: BLE001 - recorded in the report, the run goes on
                    checked[(proto, rows)] = str(exc)[:300]
            if checked[(proto, rows)]:
                runs.append({**entry, "error": checked[(proto, rows)]})
                log(f"  {name} {proto} rows={rows} c={conns}: {checked[(proto, rows)]}")
                continue
            if not proc.alive():
                runs.append({**entry, "error": "server exited"})
                continue
            tag = f"{proto}-{rows}-{conns}"
            try:
                if args.warmup:
                    drive(proto, rows, conns, args.warmup, ctx, payloads, tag + "-warmup")
                result = measured(proc, lambda p=proto, r=rows, c=conns, t=tag: drive(p, r, c, args.duration, ctx, payloads, t))
                if proto in ("v1", "v2") and args.tail_conns and conns >= args.tail_conns:
                    # Throughput and CPU stay wrk's; the latencies come from a second run that records each request.
                    tail = recorded_latency(proto, rows, conns, args.duration, ctx, payloads)
                    result.update(wrk_p50_ms=result["p50_ms"], wrk_p99_ms=result["p99_ms"], latency_client="recorder",
                                  p50_ms=tail["p50_ms"], p99_ms=tail["p99_ms"], max_ms=tail["max_ms"],
                                  recorder_rps=tail["rps"], recorder_errors=tail["errors"])
            except Exception as exc:  # noqa: BLE001 - recorded in the report, the run goes on
                runs.append({**entry, "error": str(exc)[:300]})
                log(f"  {name} {tag}: {exc}")
                continue
            runs.append({**entry, **result})
            log(f"  {name:13s} {proto:4s} rows={rows:<2d} c={conns:<2d} {result['rps']:8.0f} req/s  "
                f"p50 {result['p50_ms']:6.2f}  p99 {result['p99_ms']:7.2f} ms  err {result['errors']}  "
                f"cpu {result['cpu_us_per_req'] or 0:6.0f} µs/req  rss {result['rss_mib']:.0f} MiB")
    finally:
        proc.stop()


# -- worker-pool health scenario -----------------------------------------------------------------------
class Probe(threading.Thread):
    """GET /v2/health/live at a low fixed rate on its own keep-alive connection; records latencies."""

    def __init__(self, port: int, hz: float, timeout: float = 2.0):
        super().__init__(daemon=True)
        self.port, self.interval, self.timeout = port, 1.0 / hz, timeout
        self.latencies: list[float] = []
        self.failures = 0
        self._halt = threading.Event()

    def run(self) -> None:
        conn = None
        next_at = time.perf_counter()
        while not self._halt.is_set():
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            t0 = time.perf_counter()
            try:
                conn.request("GET", LIVE_PATH)
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    self.latencies.append((time.perf_counter() - t0) * 1000)
                else:
                    self.failures += 1
            except (OSError, http.client.HTTPException):
                self.failures += 1
                conn.close()
                conn = None
            next_at += self.interval
            self._halt.wait(max(0.0, next_at - time.perf_counter()))

    def stop(self) -> dict:
        self._halt.set()
        self.join(timeout=self.timeout + 1)
        lat = sorted(self.latencies)
        pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] if lat else None
        return {"health_probes": len(lat) + self.failures, "health_failures": self.failures,
                "health_p50_ms": pct(50), "health_p99_ms": pct(99), "health_max_ms": lat[-1] if lat else None}


def health_session(name: str, args, payloads, rnd: int, runs: list, starts: list) -> None:
    cfg = servers.CONFIGS[name]
    base = {"server": name, "peer": cfg.peer, "round": rnd, "proto": "v2", "rows": 1, "conns": args.health_conns}
    try:
        proc, ctx, cold = start_server(name, args, payloads, "health", rnd)
    except Exception as exc:  # noqa: BLE001 - recorded in the report, the run goes on
        log(f"  {name}: failed to start: {exc}")
        runs.append({**base, "error": f"start: {exc}"[:300]})
        return
    starts.append({"server": name, "round": rnd, "cold_start_s": cold})
    try:
        check_rest(ctx.http_port, "v2", 1, payloads["bodies"][("v2", 1)])
        if args.warmup:
            drive("v2", 1, args.health_conns, args.warmup, ctx, payloads, "health-warmup")
        probe = Probe(ctx.http_port, args.health_probe_hz)
        probe.start()
        try:
            result = measured(proc, lambda: drive("v2", 1, args.health_conns, args.duration, ctx, payloads, "health"))
        finally:
            result_probe = probe.stop()
        runs.append({**base, **result, **result_probe})
        log(f"  {name:13s} infer {result['rps']:6.1f} req/s p99 {result['p99_ms']:7.1f} ms | live p50 "
            f"{result_probe['health_p50_ms'] or float('nan'):.2f} p99 {result_probe['health_p99_ms'] or float('nan'):.2f} "
            f"max {result_probe['health_max_ms'] or float('nan'):.1f} ms, {result_probe['health_failures']} failed probes")
    except Exception as exc:  # noqa: BLE001 - recorded in the report, the run goes on
        runs.append({**base, "error": str(exc)[:300]})
        log(f"  {name}: {exc}")
    finally:
        proc.stop()


# -- main --------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    csv = lambda t: [x for x in t.split(",") if x]
    ints = lambda t: [int(x) for x in csv(t)]
    p.add_argument("--scenario", choices=["infer", "health", "both", "large", "models", "conns", "memory"], default="infer",
                   help="infer/health/both: the peer comparison; large/models/conns/memory: bench/scenarios.py")
    p.add_argument("--servers", type=csv, default=None,
                   help=f"comma list of configs, in order (default: {','.join(servers.DEFAULT_ORDER)}); "
                        f"python-peers = {','.join(servers.PYTHON_PEERS)}")
    p.add_argument("--protocols", type=csv, default=["v1", "v2", "grpc", "grpc-stream"],
                   help="v1, v2 (REST), grpc (unary ModelInfer), grpc-stream (ModelStreamInfer, --stream-depth "
                        "requests per stream; modelport only: KServe 0.21 has no ModelStreamInfer and MLServer's "
                        "streams one generative request)")
    p.add_argument("--stream-depth", type=int, default=32, help="grpc-stream: inference requests per stream")
    p.add_argument("--rows", type=ints, default=[1, 32])
    p.add_argument("--conns", type=ints, default=None, help="default 1,8,64 (--quick: 8)")
    p.add_argument("--tail-conns", type=int, default=64,
                   help="REST cases with at least this many connections take p50/p99 from the recording client (0: wrk's)")
    p.add_argument("--warmup", type=int, default=None, help="seconds before each measured run (default 2)")
    p.add_argument("--duration", type=int, default=None, help="seconds per measured run (default 10)")
    p.add_argument("--rounds", type=int, default=None, help="A B A B rounds (default 2)")
    p.add_argument("--quick", action="store_true", help="smoke test: 1 round, 1s warm-up, 2s runs, 8 conns")
    p.add_argument("--ready-timeout", type=float, default=90.0)
    p.add_argument("--burn-ms", type=float, default=50.0, help="health scenario: CPU ms burnt per call")
    p.add_argument("--health-conns", type=int, default=8)
    p.add_argument("--health-probe-hz", type=float, default=10.0)
    p.add_argument("--extra-settings", action="append", default=[], metavar="SERVER=JSON",
                   help="merge JSON into SERVER's model-settings.json (modelport, mlserver*), "
                        "e.g. modelport='{\"parallel_workers\": 2}'")
    p.add_argument("--extra-flags", action="append", default=[], metavar="SERVER=FLAGS",
                   help="append FLAGS (shell-split) to SERVER's command line, e.g. kserve='--workers 2'")
    p.add_argument("--no-install", action="store_true", help="use the venvs as they are (no pip)")
    p.add_argument("--setup-only", action="store_true")
    p.add_argument("--retrain", action="store_true")
    p.add_argument("--out", type=Path, default=BENCH / "results")
    for flag, kind, default in SCENARIO_ARGS:
        p.add_argument(flag, type=kind, default=default, help="large/models/conns/memory scenario option")
    args = p.parse_args(argv)
    quick = args.quick
    args.conns = args.conns or ([8] if quick else [1, 8, 64])
    args.warmup = args.warmup if args.warmup is not None else (1 if quick else 2)
    args.duration = args.duration or (2 if quick else 10)
    args.rounds = args.rounds or (1 if quick else 2)
    import shlex

    def keyed(items, parse):
        out = {}
        for item in items:
            key, _, value = item.partition("=")
            if key not in servers.CONFIGS:
                p.error(f"unknown server {key!r} in {item!r}")
            out[key] = parse(value)
        return out

    args.extra_settings = keyed(args.extra_settings, json.loads)
    args.extra_flags = keyed(args.extra_flags, shlex.split)
    if args.quick:  # the extra scenarios, shrunk to a smoke run
        args.memory_requests = min(args.memory_requests, 20_000)
        args.models, args.conns_count, args.conns_seconds = min(args.models, 20), min(args.conns_count, 200), min(args.conns_seconds, 5)
        args.conns_rate, args.models_requests = min(args.conns_rate, 100), min(args.models_requests, 300)
        args.large_requests = min(args.large_requests, 20)
    scen = ["infer", "health"] if args.scenario == "both" else [args.scenario]
    default = [n for n in servers.DEFAULT_ORDER if any(s in servers.CONFIGS[n].scenarios for s in scen)]
    args.servers = args.servers or default
    # A group name expands in place: python-peers = LitServe, BentoML and Ray Serve, every config.
    args.servers = [x for n in args.servers for x in (servers.PYTHON_PEERS if n == "python-peers" else [n])]
    for n in args.servers:
        if n not in servers.CONFIGS:
            p.error(f"unknown server {n!r}; known: {', '.join(servers.CONFIGS)}")
    args.scenarios = scen
    return args


SCENARIO_ARGS = [("--large-requests", int, 200), ("--large-conns", int, 1), ("--large-rounds", int, 3),
                 ("--large-servers", str, "echo-floor-http,echo-floor-grpc,modelport,kserve,mlserver-pw0-quiet,mlserver"),
                 ("--models", int, 200),
                 ("--models-requests", int, 2000), ("--conns-count", int, 1000), ("--conns-rate", int, 500),
                 ("--conns-seconds", int, 20), ("--conns-clients", int, 2), ("--memory-requests", int, 1_000_000)]
# The server configs the models and conns scenarios can drive (bench/scenarios.py PEERS).
SCENARIO_SERVERS = ["modelport", "kserve-quiet", "kserve", "mlserver-pw0-quiet", "mlserver"]


def run_scenario(args) -> int:
    """One of bench/scenarios.py's scenarios, run by the modelport venv's Python (numpy, grpcio,
    modelport); written to results/<stamp>-<name>.md. models and conns also drive KServe and MLServer
    (their venvs are made here); large drives the echo floors, modelport, KServe and MLServer
    (--large-servers); memory drives modelport alone."""
    peers = args.scenario in ("models", "conns")
    chosen = args.servers or (SCENARIO_SERVERS if peers else ["modelport"])
    if peers and any(n not in SCENARIO_SERVERS for n in chosen):
        raise SystemExit(f"--scenario {args.scenario} drives these configs: {', '.join(SCENARIO_SERVERS)}")
    if args.scenario == "large":  # its servers are --large-servers (bench/scenarios.py LARGE_SERVERS)
        chosen = ["modelport", "kserve", "mlserver"]
    if not args.no_install:
        setup(sorted(set(chosen) | {"modelport"}), False, False)
    python = envs.python("modelport")
    if not python.exists():
        python = Path(sys.executable)
    t0 = time.time()
    flags = [f"{flag}={getattr(args, flag[2:].replace('-', '_'))}" for flag, _, _ in SCENARIO_ARGS]
    if peers:
        flags.append(f"--servers={','.join(chosen)}")
    body = subprocess.run([str(python), str(BENCH / "scenarios.py"), args.scenario, *flags], check=True,
                          stdout=subprocess.PIPE, text=True).stdout
    load_avg = " ".join(f"{x:.2f}" for x in __import__("os").getloadavg())
    text = (f"# modelport scenario {args.scenario} {datetime.now():%Y-%m-%d %H:%M}\n\n"
            f"Load average at the end: {load_avg} ({len(__import__('os').sched_getaffinity(0))} CPUs).\n\n{body}")
    text += f"\n\n_Total wall time {time.time() - t0:.0f}s._\n"
    stamp = datetime.now().strftime("%Y-%m-%d-%H%M%S") + f"-{args.scenario}" + ("-quick" if args.quick else "")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stamp}.md").write_text(text)
    log("\n" + text)
    log(f"wrote {args.out / (stamp + '.md')}")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.scenario in ("large", "models", "conns", "memory"):
        return run_scenario(args)
    t_start = time.time()
    need_grpc = bool({"grpc", "grpc-stream"} & set(args.protocols)) and "infer" in args.scenarios
    names = setup(args.servers, need_grpc, args.no_install)
    depth = args.stream_depth if "grpc-stream" in args.protocols else 0
    payloads = prepare_payloads(sorted(set(args.rows) | {1}), need_grpc, args.retrain, depth)
    if args.setup_only:
        log("setup done")
        return 0
    versions = peer_versions(names)
    stamp = datetime.now().strftime("%Y-%m-%d-%H%M%S") + ("-quick" if args.quick else "")
    meta = {
        "stamp": stamp, "host": platform.node(), "cpus": len(__import__("os").sched_getaffinity(0)),
        "python": platform.python_version(), "versions": versions, "servers": names,
        "settings": {k: getattr(args, k) for k in ("scenarios", "protocols", "stream_depth", "rows", "conns", "warmup", "duration",
                                                    "rounds", "burn_ms", "health_conns", "health_probe_hz",
                                                    "extra_settings", "extra_flags")},
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.splitlines()[:1],
        "h2load": subprocess.run(["h2load", "--version"], capture_output=True, text=True, check=False).stdout.strip(),
    }
    out: dict = {"meta": meta}
    sections = [f"# modelport benchmark {stamp}", "",
                f"{meta['cpus']} CPUs, Python {meta['python']}; warm-up {args.warmup}s, measured {args.duration}s, "
                f"{args.rounds} round(s) (medians), wrk -t1 / h2load -t1 -m1"
                + (f"; REST latencies at c>={args.tail_conns} from a second run of the recording client "
                   "(harness/load.py: every request's latency kept), req/s and CPU from wrk's" if args.tail_conns else "")
                + ". Versions: "
                + "; ".join(f"{v}: " + ", ".join(f"{k} {x}" for k, x in d.items()) for v, d in versions.items()), ""]
    for scenario in args.scenarios:
        order = [n for n in names if scenario in servers.CONFIGS[n].scenarios]
        runs: list[dict] = []
        starts: list[dict] = []
        for rnd in range(1, args.rounds + 1):
            log(f"== {scenario} round {rnd}/{args.rounds}: {' '.join(order)}")
            for name in order:
                (infer_session if scenario == "infer" else health_session)(name, args, payloads, rnd, runs, starts)
        out[scenario] = {"runs": runs, "starts": starts}
        if scenario == "infer":
            agg = report.aggregate(runs, starts)
            sections += ["## Inference throughput (medians over rounds)", "",
                         report.infer_table(agg, order), ""]
            lacking = [f"{n} ({', '.join(p for p in args.protocols if p not in servers.CONFIGS[n].protocols)})"
                       for n in order if any(p not in servers.CONFIGS[n].protocols for p in args.protocols)]
            if lacking:
                sections += ["Not applicable (the server has no such protocol; not run): " + "; ".join(lacking) + ".",
                             ""]
            sections += ["## modelport against each peer (geometric mean over cases)", "",
                         report.summary_table(agg, order), ""]
            if any(key[0] == "grpc-stream" for (_, key) in agg["cells"]):
                sections += [f"## ModelStreamInfer ({args.stream_depth} requests per stream) against unary ModelInfer", "",
                             report.stream_table(agg, order), ""]
            for other in [n for n in order if n.startswith("modelport-")]:  # e.g. the built-in sklearn runtime
                sections += [f"## {other} against each peer (geometric mean over cases)", "",
                             report.summary_table(agg, order, other), ""]
        else:
            title = (f"## Worker-pool health: {args.burn_ms:g} ms CPU per call, {args.health_conns} conns of V2 "
                     f"infer, /v2/health/live probed at {args.health_probe_hz:g} Hz")
            sections += [title, "",
                         report.health_table(runs, order), ""]
    sections += ["## Configs", ""] + [f"- **{n}**: {servers.CONFIGS[n].note}" for n in names] + [""]
    sections.append(f"_Total wall time {time.time() - t_start:.0f}s._")
    text = "\n".join(sections) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stamp}.md").write_text(text)
    (args.out / f"{stamp}.json").write_text(json.dumps(out, indent=1, default=str))
    log("\n" + text)
    log(f"wrote {args.out / (stamp + '.md')} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

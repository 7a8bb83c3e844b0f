"""More models than memory (issue 23): thousands of small models, a budget that fits ~10 % of them.

    python bench/many_models.py                          # the full run: 2,000 models (the lead runs this)
    python bench/many_models.py --models 60 --seconds 5 --rate 50 --burst 20   # a smoke run

Made at bench time into a temp folder: ``--models`` small models, sklearn (iris LogisticRegression,
joblib) and XGBoost (iris, 20 rounds, model.json) alternating, one file copy per model folder.

Cases, one server at a time (each in its own process group; RSS of its whole process tree from /proc):

1. ``calibrate``: modelport with residency on and no real limit loads 20 models of each kind and reads
   their measured sizes from ``/v2/repository/index``; the budget is ``--budget-fraction`` (0.1) of the
   models' total, unless ``--budget`` gives one.
2. ``modelport budget``: ``memory_budget`` set; Zipf traffic (``--zipf`` 1.1) at ``--rate`` requests/s for
   ``--seconds``, open loop (latency counts from each request's scheduled time, so a stalled server is
   not hidden), V2 REST over ``--conns`` keep-alive connections. A hit is an answer without
   ``x-modelport-load-seconds``; a cold start is one with it. RSS sampled every 0.5 s against budget +
   the stated overhead: the server's RSS when ready with every model registered and one model of each
   kind loaded (sklearn and xgboost imported once).
3. ``modelport no budget``: the same models all loaded at start, the same traffic.
4. ``mlserver``: MLServer 1.7.1 (``--mlserver``, default .venv-peers/mlserver/bin/mlserver), every model
   loaded at start, the same traffic. It serves the XGBoost half only when mlserver-xgboost is in its
   venv; otherwise the sklearn half, and the report says so.
5. ``burst``: a fresh modelport with the budget; ``--burst`` first requests for distinct cold models at
   once: every one answered, loads bounded by ``max_concurrent_loads`` (the server's high-water gauge).

Errors are any non-200. Busy evictions: none by construction (only idle models are chosen); a busy
model evicted would fail its request, so the errors column would show it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
from scenarios import Conn, Server, _peer_env, free_port, http_once, log, pct, post  # noqa: E402

V2_ROW = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32",
                                 "data": [5.1, 3.5, 1.4, 0.2]}]}).encode()
LOAD_HEADER = b"x-modelport-load-seconds"


# -- the models -------------------------------------------------------------------------------------
def train(work: Path) -> dict[str, Path]:
    """One iris LogisticRegression (joblib) and one iris XGBoost booster (model.json)."""
    import joblib
    import xgboost
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    work.mkdir(parents=True, exist_ok=True)
    joblib.dump(LogisticRegression(max_iter=300).fit(X, y), work / "model.joblib")
    xgboost.XGBClassifier(n_estimators=20, max_depth=3).fit(X, y).save_model(work / "model.json")
    return {"sklearn": work / "model.joblib", "xgboost": work / "model.json"}


def kinds(count: int) -> list[tuple[str, str]]:
    return [(f"{'sk' if i % 2 == 0 else 'xgb'}{i}", "sklearn" if i % 2 == 0 else "xgboost") for i in range(count)]


def make_folder(root: Path, models: list[tuple[str, str]], files: dict[str, Path], peer: str = "modelport") -> Path:
    for name, kind in models:
        folder = root / name
        folder.mkdir(parents=True)
        shutil.copy(files[kind], folder / files[kind].name)
        if peer == "modelport":
            settings = {"name": name, "implementation": kind}
        else:
            settings = {"name": name, "implementation": "mlserver_sklearn.SKLearnModel" if kind == "sklearn"
                        else "mlserver_xgboost.XGBoostModel", "parameters": {"uri": str(folder / files[kind].name)}}
        (folder / "model-settings.json").write_text(json.dumps(settings))
    return root


def modelport_server(folder: Path, env: dict, names: list[str] = ()) -> Server:
    from scenarios import _python

    python, base = _python()
    http, grpc = free_port(), free_port()
    argv = [python, "-m", "modelport.cli", "serve", str(folder), "--host", "127.0.0.1", "--http-port", str(http),
            "--grpc-port", str(grpc)]
    return Server(folder, argv=argv, env={**base, **env}, models=list(names), ports=(http, grpc))


# -- traffic ----------------------------------------------------------------------------------------
def zipf_schedule(names: list[str], s: float, rate: float, seconds: float, seed: int = 1) -> list[tuple[float, str]]:
    """(offset seconds, model) pairs: a fixed rate, models drawn with P(rank k) ∝ 1/k^s (ranks shuffled)."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, len(names) + 1, dtype=np.float64)
    p = ranks ** -s
    p /= p.sum()
    order = rng.permutation(len(names))  # which model has which rank
    picks = rng.choice(len(names), size=int(rate * seconds), p=p)
    return [(i / rate, names[order[k]]) for i, k in enumerate(picks)]


async def drive(server: Server, schedule: list[tuple[float, str]], conns: int) -> dict:
    """Open loop: each request is sent at its time on a free connection; latency from that time."""
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(conns):
        pool.put_nowait(await Conn.open(server.http))
    hits, colds, errors, rss = [], [], [], []
    t0 = time.perf_counter()
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            rss.append((time.perf_counter() - t0, server.rss()))
            await asyncio.sleep(0.5)

    async def one(at: float, name: str) -> None:
        conn = await pool.get()
        try:
            status, headers, body = await conn.request(post(f"/v2/models/{name}/infer", V2_ROW))
            took = time.perf_counter() - (t0 + at)
            if status != 200:
                errors.append(f"{name}: {status} {body[:120]!r}")
            (colds if LOAD_HEADER in headers else hits).append(took)
        except Exception as exc:  # noqa: BLE001 - counted
            errors.append(f"{name}: {exc!r}")
            conn = await Conn.open(server.http)
        finally:
            pool.put_nowait(conn)

    sampler = asyncio.ensure_future(sample())
    tasks = []
    for at, name in schedule:
        delay = t0 + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(at, name)))
    await asyncio.gather(*tasks)
    stop.set()
    await sampler
    while not pool.empty():
        pool.get_nowait().close()
    return {"hits": hits, "colds": colds, "errors": errors, "rss": rss, "seconds": time.perf_counter() - t0}


async def get_json(port: int, path: str, body: bytes | None = None) -> object:
    raw = post(path, body) if body is not None else f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    status, _, payload = await http_once(port, raw)
    if status != 200:
        raise RuntimeError(f"{path}: {status} {payload[:200]!r}")
    return json.loads(payload) if payload[:1] in (b"{", b"[") else payload.decode()


async def metrics(port: int) -> dict[str, float]:
    text = await get_json(port, "/metrics")
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


# -- cases ------------------------------------------------------------------------------------------
async def calibrate(work: Path, files: dict[str, Path]) -> dict[str, int]:
    sample = kinds(40)
    folder = make_folder(work / "calibrate", sample, files)
    server = modelport_server(folder, {"MODELPORT_MAX_LOADED_MODELS": "100000"})
    try:
        await server.ready()
        for name, _ in sample:
            await http_once(server.http, post(f"/v2/models/{name}/infer", V2_ROW))
        index = await get_json(server.http, "/v2/repository/index", b"{}")
    finally:
        server.stop()
    sizes: dict[str, list[int]] = {"sklearn": [], "xgboost": []}
    for item in index:
        sizes["sklearn" if item["name"].startswith("sk") else "xgboost"].append(item["memory"]["bytes"])
    sources = sorted({item["memory"]["source"] for item in index})
    log(f"calibrate: sizes {({k: int(np.mean(v)) for k, v in sizes.items()})}, source {sources}")
    return {k: int(np.mean(v)) for k, v in sizes.items()} | {"source": ",".join(sources)}


def row(label: str, ready: float, result: dict | None, rss_ready: float, extra: str = "") -> str:
    if result is None:
        return f"| {label} | {ready:.1f} | {rss_ready:.0f} | | | | | | | | {extra} |"
    hits, colds = result["hits"], result["colds"]
    peak = max((r for _, r in result["rss"]), default=float("nan"))
    return (f"| {label} | {ready:.1f} | {rss_ready:.0f} | {peak:.0f} | {len(hits) + len(colds):,} | "
            f"{pct(hits, 50) * 1e3:.2f} | {pct(hits, 99) * 1e3:.2f} | {len(colds):,} | "
            f"{pct(colds, 50) * 1e3:.1f} / {pct(colds, 99) * 1e3:.1f} | {len(result['errors'])} | {extra} |")


async def main_async(args) -> str:
    work = Path(tempfile.mkdtemp(prefix="bench-many-models-"))
    try:
        return await run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def run(args, work: Path) -> str:
    files = train(work / "trained")
    models = kinds(args.models)
    names = [n for n, _ in models]
    sizes = await calibrate(work, files)
    total = sum(sizes[k] for _, k in models)
    budget = args.budget or int(total * args.budget_fraction)
    schedule = zipf_schedule(names, args.zipf, args.rate, args.seconds)
    rows = ["| server | time to ready s | RSS at ready MiB | RSS peak MiB | requests | hit p50 ms | hit p99 ms "
            "| cold starts | cold p50 / p99 ms | errors | notes |", "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
    rss_lines = []
    folder = make_folder(work / "models", models, files)

    # 2. modelport with the budget
    env = {"MODELPORT_MEMORY_BUDGET": str(budget), "MODELPORT_MAX_CONCURRENT_LOADS": str(args.max_concurrent_loads)}
    server = modelport_server(folder, env)
    try:
        ready = await server.ready()
        # The overhead: the server with every model registered and sklearn and xgboost imported (one model
        # of each kind loaded; a library's import is paid once, not per model).
        for name in (models[0][0], models[1][0]):
            await http_once(server.http, post(f"/v2/models/{name}/infer", V2_ROW))
        rss_ready = server.rss()
        result = await drive(server, schedule, args.conns)
        m = await metrics(server.http)
        allowed = budget / 2**20 + rss_ready
        peak = max((r for _, r in result["rss"]), default=float("nan"))
        evictions = sum(v for k, v in m.items() if k.startswith("modelport_model_evictions_total"))
        # Flat or growing: RSS over the second half of the run, when the hot set is loaded (a leak per
        # load and eviction shows here as a steady climb).
        samples = [r for _, r in result["rss"]]
        half = samples[len(samples) // 2] if samples else float("nan")
        # Each model that has served keeps its statistics and metric series (counters must not reset on
        # eviction): overhead per model served, bounded by the models registered (~12 KB of Prometheus
        # children each, measured with tracemalloc; issue 23's earlier climb per load was XGBoost's per-thread
        # save_raw copy, fixed in 8550705).
        served = len({n for _, n in schedule})
        rows.append(row("modelport, memory_budget", ready, result, rss_ready,
                        f"budget {budget / 2**20:.1f} MiB; peak RSS − (budget + RSS at ready, libraries imported) = "
                        f"{peak - allowed:+.1f} MiB over {served:,} models served "
                        f"({(peak - allowed) * 1024 / max(1, served):.1f} KiB each); "
                        f"RSS over the second half {half:.0f} → {samples[-1] if samples else float('nan'):.0f} MiB; "
                        f"{evictions:.0f} evictions, 0 of busy models (errors {len(result['errors'])})"))
        rss_lines = [f"| {t:.1f} | {r:.0f} |" for t, r in result["rss"][:: max(1, len(result["rss"]) // 30)]]
        for e in result["errors"][:5]:
            log(f"  error: {e}")
    finally:
        server.stop()
    log(rows[-1])

    # 3. modelport with no budget
    server = modelport_server(folder, {}, names=[])
    try:
        ready = await server.ready()
        rss_ready = server.rss()
        result = await drive(server, schedule, args.conns)
        rows.append(row("modelport, no budget (all loaded)", ready, result, rss_ready))
    finally:
        server.stop()
    log(rows[-1])

    # 4. MLServer, all loaded
    mlserver = Path(args.mlserver)
    if mlserver.exists():
        python = mlserver.parent / "python"
        has_xgb = subprocess.run([str(python), "-c", "import mlserver_xgboost"], capture_output=True).returncode == 0
        served = models if has_xgb else [(n, k) for n, k in models if k == "sklearn"]
        peer_folder = make_folder(work / "mlserver", served, files, peer="mlserver")
        http, grpc = free_port(), free_port()
        (peer_folder / "settings.json").write_text(json.dumps(
            {"host": "127.0.0.1", "http_port": http, "grpc_port": grpc, "metrics_port": free_port(),
             "parallel_workers": 0, "debug": False}))
        server = Server(peer_folder, argv=[str(mlserver), "start", str(peer_folder)], env=_peer_env(),
                        models=[served[-1][0]], ports=(http, grpc))
        try:
            ready = await server.ready(timeout=1800)
            rss_ready = server.rss()
            served_names = {n for n, _ in served}
            peer_schedule = [(t, n) for t, n in schedule if n in served_names]
            result = await drive(server, peer_schedule, args.conns)
            note = "all models" if has_xgb else "sklearn half only (no mlserver-xgboost in its venv)"
            rows.append(row(f"MLServer 1.7.1, all loaded (parallel_workers 0, debug off)", ready, result, rss_ready, note))
        except Exception as exc:  # noqa: BLE001 - the table says so
            rows.append(f"| MLServer 1.7.1 | failed: {' '.join(str(exc).split())[:200]} | | | | | | | | | |")
        finally:
            server.stop()
        log(rows[-1])
    else:
        rows.append(f"| MLServer 1.7.1 | not run: {mlserver} missing | | | | | | | | | |")

    # 5. a burst of first requests for cold models
    server = modelport_server(folder, env)
    try:
        await server.ready()
        for name in names[-2:]:  # import sklearn and xgboost first: the burst measures loads, not imports
            await http_once(server.http, post(f"/v2/models/{name}/infer", V2_ROW))
        burst = names[: args.burst]
        async def first(name: str) -> tuple[int, float]:
            t = time.perf_counter()
            status, _, _ = await http_once(server.http, post(f"/v2/models/{name}/infer", V2_ROW))
            return status, time.perf_counter() - t

        t0 = time.perf_counter()
        answers = await asyncio.gather(*(first(n) for n in burst), return_exceptions=True)
        wall = time.perf_counter() - t0
        peak_loads = (await metrics(server.http)).get("modelport_model_loads_running_peak", float("nan"))
        ok = [a for a in answers if isinstance(a, tuple) and a[0] == 200]
        lat = [a[1] for a in ok]
        burst_line = (f"{len(burst)} first requests at once: {len(ok)} answered 200, {len(burst) - len(ok)} errors, all in "
                      f"{wall:.2f} s; latency p50 {pct(lat, 50) * 1e3:.0f} ms, p99 {pct(lat, 99) * 1e3:.0f} ms; loads "
                      f"running at once at most {peak_loads:.0f} (the server's modelport_model_loads_running_peak), "
                      f"max_concurrent_loads {args.max_concurrent_loads}")
    finally:
        server.stop()
    log(burst_line)

    return (f"## More models than memory: {args.models:,} models (sklearn and XGBoost alternating)\n\n"
            f"Measured sizes (calibration, source `{sizes['source']}`): sklearn {sizes['sklearn']:,} B, XGBoost "
            f"{sizes['xgboost']:,} B; all models {total / 2**20:.1f} MiB; budget {budget / 2**20:.2f} MiB "
            f"({budget / total:.0%}). Traffic: Zipf s={args.zipf} over the models, {args.rate:g} req/s for "
            f"{args.seconds:g} s ({len(schedule):,} requests), open loop on {args.conns} keep-alive connections, "
            f"V2 REST `[1,4]` FP32. Latency from each request's scheduled time.\n\n" + "\n".join(rows)
            + f"\n\nBurst: {burst_line}\n\nRSS over time (modelport with the budget):\n\n| s | RSS MiB |\n|--:|--:|\n"
            + "\n".join(rss_lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=int, default=2000)
    p.add_argument("--budget", type=int, default=0, help="bytes (default: --budget-fraction of the measured total)")
    p.add_argument("--budget-fraction", type=float, default=0.1)
    p.add_argument("--zipf", type=float, default=1.1)
    p.add_argument("--rate", type=float, default=200.0, help="requests per second")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--conns", type=int, default=16)
    p.add_argument("--burst", type=int, default=100)
    p.add_argument("--max-concurrent-loads", type=int, default=4)
    p.add_argument("--mlserver", default=str(REPO / ".venv-peers" / "mlserver" / "bin" / "mlserver"))
    p.add_argument("--out", help="also write the report here (e.g. bench/results/<stamp>-many-models.md)")
    args = p.parse_args()
    report = asyncio.run(main_async(args))
    print(report)
    if args.out:
        Path(args.out).write_text(report)


if __name__ == "__main__":
    main()

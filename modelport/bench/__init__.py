"""``modelport bench``: load-test a running server (or one it starts), perf_analyzer style.

One step per concurrency (closed loop) or request rate (open loop): a warm-up that is not counted,
then a measurement window by time or by request count. The request is built once, from the model's
metadata (random data of the declared shapes) or from a file. Server-side time per request (whole,
batch queue, model hooks) comes from the server's /metrics before and after each step.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .load import PROTOCOLS, GrpcSender, HttpSender, Recorder, closed_loop, http_request_bytes, open_loop
from .load import request_from_file, request_from_metadata
from .report import StepResult, perf_text, scrape, server_split, summarize

__all__ = ["BenchConfig", "StepResult", "parse_levels", "run_bench", "start_server"]


@dataclass
class BenchConfig:
    model: str
    url: str = "http://127.0.0.1:8080"
    grpc: str | None = None  # host:port, for --protocol grpc
    protocol: str = "rest-v2"
    version: str | None = None
    input_file: str | None = None
    batch: int = 1
    concurrency: list[int] = field(default_factory=lambda: [1])
    rates: list[float] | None = None  # open loop: requests per second per step
    duration: float = 5.0  # seconds measured per step (when requests is 0)
    requests: int = 0  # or: this many requests measured per step
    warmup: float = 1.0  # seconds per step, not measured
    processes: int = 1
    seed: int = 0
    metrics: bool = True  # read the server's split from /metrics


def parse_levels(text: str, kind: type = int) -> list:
    """``8``, ``1,2,8``, ``1:64:x2`` (multiply) or ``1:8:1`` / ``10:100:+10`` (add)."""
    text = text.strip()
    if ":" not in text:
        return [kind(v) for v in text.split(",") if v.strip()]
    parts = text.split(":")
    if len(parts) != 3:
        raise ValueError(f"{text!r}: use start:end:step, e.g. 1:64:x2 or 1:8:1")
    start, end, step = kind(parts[0]), kind(parts[1]), parts[2].strip()
    out, value = [], start
    if step.startswith(("x", "*")):
        factor = float(step[1:])
        if factor <= 1 or start <= 0:
            raise ValueError(f"{text!r}: a multiplying step needs a factor above 1 and a positive start")
        while value <= end:
            out.append(kind(value))
            value = value * factor
    else:
        increment = kind(step.lstrip("+"))
        if increment <= 0:
            raise ValueError(f"{text!r}: the step must be positive")
        while value <= end:
            out.append(value)
            value += increment
    if not out or min(out) <= 0:
        raise ValueError(f"{text!r}: levels must be positive")
    return out


# -- the request -----------------------------------------------------------------------------------
def _metadata(config: BenchConfig) -> dict:
    if config.protocol == "grpc":
        import grpc

        from ..wire.grpc import convert
        from ..wire.grpc import grpc_predict_v2_pb2 as pb
        from ..wire.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

        with grpc.insecure_channel(config.grpc) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            try:
                msg = stub.ModelMetadata(pb.ModelMetadataRequest(name=config.model, version=config.version or ""), timeout=30)
            except grpc.RpcError as exc:
                raise RuntimeError(f"metadata of {config.model} from {config.grpc}: {exc.code().name} {exc.details()}") from None
        return convert.model_metadata_from_proto(msg)
    import httpx

    path = f"/v2/models/{config.model}" + (f"/versions/{config.version}" if config.version else "")
    try:
        r = httpx.get(config.url.rstrip("/") + path, timeout=30)
    except httpx.HTTPError as exc:
        raise RuntimeError(f"cannot reach {config.url}: {exc}") from None
    if r.status_code != 200:
        raise RuntimeError(f"metadata of {config.model}: HTTP {r.status_code} {r.text}")
    return r.json()


def build_request(config: BenchConfig) -> Any:
    if config.input_file:
        return request_from_file(config.model, config.input_file)
    return request_from_metadata(config.model, _metadata(config), config.batch, config.seed)


def _sender(config: BenchConfig, request: Any) -> Any:
    if config.protocol == "grpc":
        return GrpcSender(config.grpc, request)
    return HttpSender(config.url, http_request_bytes(config.url, config.model, config.protocol, request, config.version))


# -- one step --------------------------------------------------------------------------------------
async def _step(config: BenchConfig, request: Any, level: float, on_tick: Any = None,
                on_measure: Any = None) -> tuple[np.ndarray, dict, float, float]:
    """Run warm-up then measurement at one level; returns latencies (ns), errors, the window (s) and the
    client's CPU time per request (us).
    ``on_measure()`` runs when the warm-up ends (the server's counters are read then)."""
    send = _sender(config, request)
    recorder = Recorder()
    state = {"stop": False}
    window = [0.0, 0.0]

    cpu = [0.0, 0.0]

    def stop() -> bool:
        return state["stop"]

    async def conduct() -> None:
        started = time.perf_counter()
        while time.perf_counter() - started < config.warmup:
            await asyncio.sleep(0.05)
        if on_measure is not None:
            on_measure()
        window[0] = time.perf_counter()
        recorder.start = time.perf_counter_ns()
        cpu[0] = time.process_time()
        while True:
            await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - window[0]
            if on_tick is not None:
                on_tick(recorder, elapsed)
            if (config.requests and len(recorder.latencies) + sum(recorder.errors.values()) >= config.requests) or (
                not config.requests and elapsed >= config.duration
            ):
                break
        window[1] = time.perf_counter()
        recorder.end = time.perf_counter_ns()
        state["stop"] = True

    if config.rates is not None:
        load = open_loop(send, recorder, level, stop)
    else:
        load = closed_loop(send, recorder, int(level), stop)
    try:
        await asyncio.gather(conduct(), load)  # the load ends once the requests started in the window are answered
        cpu[1] = time.process_time()
    finally:
        await send.aclose()
    done = len(recorder.latencies) + sum(recorder.errors.values())
    cpu_us = 1e6 * (cpu[1] - cpu[0]) / done if done else 0.0
    return np.asarray(recorder.latencies, dtype=np.int64), recorder.errors, window[1] - window[0], cpu_us


def _run_loop(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def _child(config_doc: dict, request: Any, level: float, out: Any) -> None:
    config = BenchConfig(**config_doc)
    latencies, errors, seconds, _ = _run_loop(_step(config, request, level, on_measure=lambda: out.put("measuring")))
    out.put((latencies.tobytes(), errors, seconds))


def _step_processes(config: BenchConfig, request: Any, level: float, on_measure: Any) -> tuple[np.ndarray, dict, float, float]:
    """The step split over ``processes`` client processes (each takes its share of the level)."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    share = level / config.processes
    shares = [share] * config.processes
    if config.rates is None:  # whole workers: spread the remainder
        base, extra = divmod(int(level), config.processes)
        shares = [base + (1 if i < extra else 0) for i in range(config.processes)]
    procs = [ctx.Process(target=_child, args=(asdict(config), request, s, out), daemon=True) for s in shares if s > 0]
    for p in procs:
        p.start()
    results, measuring = [], 0
    while len(results) < len(procs):
        item = out.get(timeout=config.warmup + config.duration + 300)
        if item == "measuring":
            measuring += 1
            if measuring == len(procs):
                on_measure()
        else:
            results.append(item)
    for p in procs:
        p.join(30)
    latencies = np.concatenate([np.frombuffer(r[0], dtype=np.int64) for r in results]) if results else np.zeros(0, np.int64)
    errors: dict[str, int] = {}
    for r in results:
        for code, n in r[1].items():
            errors[code] = errors.get(code, 0) + n
    # Every process measured its own window; their mean is the step's (they start within ~1 s of each other
    # and each warms up first).
    seconds = float(np.mean([r[2] for r in results])) if results else 0.0
    return latencies, errors, seconds, 0.0  # CPU per request: not summed over processes


def _scrape(config: BenchConfig) -> dict[str, float] | None:
    if not config.metrics or not config.url:
        return None
    import httpx

    try:
        r = httpx.get(config.url.rstrip("/") + "/metrics", timeout=10)
    except httpx.HTTPError:
        return None
    return scrape(r.text, config.model) if r.status_code == 200 else None


def run_bench(config: BenchConfig, console: Any = None, live: bool = True) -> list[StepResult]:
    """Every step of the run; prints a perf_analyzer-style summary per step when ``console`` is given."""
    if config.protocol not in PROTOCOLS:
        raise ValueError(f"protocol {config.protocol!r}: use one of {', '.join(PROTOCOLS)}")
    if config.protocol == "grpc" and not config.grpc:
        raise ValueError("--protocol grpc needs --grpc host:port")
    request = build_request(config)
    levels = config.rates if config.rates is not None else config.concurrency
    mode = "rate" if config.rates is not None else "concurrency"
    steps = []
    for level in levels:
        before: dict = {}

        def on_measure() -> None:
            before.update(_scrape(config) or {})

        if config.processes > 1:
            latencies, errors, seconds, cpu_us = _with_progress(console if live else None, config, mode, level,
                                                                lambda tick: _step_processes(config, request, level, on_measure),
                                                        multi=True)
        else:
            latencies, errors, seconds, cpu_us = _with_progress(console if live else None, config, mode, level,
                                                                lambda tick: _run_loop(_step(config, request, level, tick, on_measure)))
        after = _scrape(config)
        step = summarize(mode, level, latencies, errors, seconds)
        step.client_cpu_us = cpu_us
        if before and after is not None:
            step.server = server_split(before, after)
        steps.append(step)
        if console is not None:
            console.print(perf_text(step))
    return steps


def _with_progress(console: Any, config: BenchConfig, mode: str, level: float, body: Any, multi: bool = False) -> Any:
    """Run ``body(tick)`` under a rich live line (phase, requests, req/s, errors), or plain lines
    (one per second) when rich is not installed."""
    if console is None:
        return body(None)
    try:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    except ImportError:
        return _plain_progress(console, config, mode, level, body, multi)

    label = f"{mode} {level:g}"
    total = config.requests or config.duration
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(f"{label}: warm-up", total=total, info="")
        if multi:
            progress.update(task, description=f"{label}: {config.processes} processes", info="")
            return body(None)
        last = [0.0]

        def tick(recorder: Recorder, elapsed: float) -> None:
            if elapsed - last[0] < 0.2:
                return
            last[0] = elapsed
            done = len(recorder.latencies)
            errors = sum(recorder.errors.values())
            progress.update(task, description=f"{label}: measuring", completed=(done + errors) if config.requests else elapsed,
                            info=f"{done} ok, {errors} errors, {done / elapsed if elapsed else 0:.0f} req/s")

        return body(tick)


def _plain_progress(console: Any, config: BenchConfig, mode: str, level: float, body: Any, multi: bool) -> Any:
    label = f"{mode} {level:g}"
    window = f"{config.requests} requests" if config.requests else f"{config.duration:g} s"
    console.print(f"{label}: warm-up {config.warmup:g} s, then measuring {window}"
                  + (f" over {config.processes} processes" if multi else ""))
    if multi:
        return body(None)
    last = [0.0]

    def tick(recorder: Recorder, elapsed: float) -> None:
        if elapsed - last[0] < 1.0:
            return
        last[0] = elapsed
        done, errors = len(recorder.latencies), sum(recorder.errors.values())
        console.print(f"{label}: {elapsed:.0f} s, {done} ok, {errors} errors, {done / elapsed:.0f} req/s")

    return body(tick)


# -- a server to bench, when asked to start one --------------------------------------------------------
class StartedServer:
    def __init__(self, proc: subprocess.Popen, url: str, grpc: str | None, drain: Any = None):
        self.proc, self.url, self.grpc, self._drain = proc, url, grpc, drain

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        if self._drain is not None:
            self._drain.join(10)
        self.proc.stdout.close()


def start_server(folder: str, extra: list[str] | None = None, timeout: float = 120, env: dict | None = None) -> StartedServer:
    """``modelport serve FOLDER`` on free ports; returns once it is ready."""
    import httpx

    args = [sys.executable, "-m", "modelport.cli", "serve", folder, "--host", "127.0.0.1", "--http-port", "0",
            "--grpc-port", "0", *(extra or [])]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    http = grpc = None
    while time.monotonic() < deadline and proc.poll() is None:
        line = proc.stdout.readline()
        lines.append(line)
        m = re.search(r"Listening for HTTP on http://[^:]+:(\d+)", line)
        if m:
            http = f"http://127.0.0.1:{m.group(1)}"
            # gRPC's line comes right after HTTP's when it is on.
            line = proc.stdout.readline()
            lines.append(line)
            m = re.search(r"Listening for gRPC on [^:]+:(\d+)", line)
            grpc = f"127.0.0.1:{m.group(1)}" if m else None
            break
    if not http:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        raise RuntimeError("modelport serve did not start:\n" + "".join(lines))
    # Drain its output from now on so it never blocks on a full pipe.
    import threading

    drain = threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True)
    drain.start()
    while time.monotonic() < deadline:
        try:
            if httpx.get(http + "/v2/health/ready", timeout=5).status_code == 200:
                return StartedServer(proc, http, grpc, drain)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    StartedServer(proc, http, grpc, drain).stop()
    raise RuntimeError("modelport serve did not become ready in time")

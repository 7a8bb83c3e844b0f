"""Scenarios beyond iris throughput: large tensors, many models, many connections, memory.

    python bench/run.py --scenario large     # [1,3,224,224] and [64,1024] FP32: REST binary, REST JSON, gRPC raw
    python bench/run.py --scenario models    # 200 small models in one server vs one model
    python bench/run.py --scenario conns     # 1,000 keep-alive connections at a fixed request rate
    python bench/run.py --scenario memory    # RSS sampled over many requests (a leak check)

Each starts ``modelport serve`` (the harness's modelport venv when it exists, else this Python with
the checkout on PYTHONPATH) and drives it from an asyncio client in this process: exact request
counts, per-request latency, server CPU and RSS from /proc. The large-tensor scenario also measures
a loopback echo server (asyncio, bytes in -> the same bytes out, framed as HTTP) as the
memcpy-bound floor. Peers (KServe, MLServer) are not driven by these scenarios yet.
"""

from __future__ import annotations

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
from cpuprobe import cpu_times, free_port, rss_mib  # noqa: E402


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _python() -> tuple[str, dict]:
    venv = BENCH / ".venvs" / "modelport" / "bin" / "python"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(BENCH / "peers")]))
    if venv.exists() and not os.environ.get("BENCH_SCENARIO_CHECKOUT"):
        return str(venv), env
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(BENCH / "peers")])
    return sys.executable, env


class Server:
    """``modelport serve`` on a folder of models, on free ports."""

    def __init__(self, folder: Path, flags: list[str] = ()):
        self.http, self.grpc = free_port(), free_port()
        python, env = _python()
        self.log = open(folder.parent / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [python, "-m", "modelport.cli", "serve", str(folder), "--host", "127.0.0.1", "--http-port", str(self.http),
             "--grpc-port", str(self.grpc), *flags], env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    async def ready(self, timeout: float = 600) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {Path(self.log.name).read_text()[-2000:]}")
            try:
                status, _, _ = await http_once(self.http, b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n")
                if status == 200:
                    return time.perf_counter() - self.t0
            except OSError:
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError("server not ready")

    def cpu(self) -> float:
        return sum(cpu_times(self.proc.pid))

    def rss(self) -> float:
        return rss_mib(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# -- a small HTTP/1.1 client: exact bytes out, status and body back -----------------------------------
class Conn:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> "Conn":
        return cls(*await asyncio.open_connection("127.0.0.1", port, limit=1 << 24))

    async def request(self, raw: bytes) -> tuple[int, dict, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        headers = {}
        for line in lines[1:]:
            if b":" in line:
                k, v = line.split(b":", 1)
                headers[k.strip().lower()] = v.strip()
        body = await self.reader.readexactly(int(headers.get(b"content-length", b"0")))
        return int(lines[0].split(b" ", 2)[1]), headers, body

    def close(self) -> None:
        self.writer.close()


async def http_once(port: int, raw: bytes):
    conn = await Conn.open(port)
    try:
        return await conn.request(raw)
    finally:
        conn.close()


def post(path: str, body: bytes, extra: dict | None = None) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    for k, v in (extra or {}).items():
        head += f"{k}: {v}\r\n"
    return head.encode() + b"\r\n" + body


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def model_folder(root: Path, name: str, settings: dict, joblib: Path | None = None) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "model-settings.json").write_text(json.dumps({"name": name, **settings}))
    if joblib is not None:
        shutil.copy(joblib, folder / "model.joblib")


def iris_joblib() -> Path:
    path = BENCH / ".work" / "iris.joblib"
    if not path.exists():
        subprocess.run([sys.executable, str(BENCH / "train_iris.py"), str(path.parent)], check=True)
    return path


# -- large tensors -------------------------------------------------------------------------------------
SHAPES = {"image [1,3,224,224]": [1, 3, 224, 224], "batch [64,1024]": [64, 1024]}


def _v2_bodies(shape: list[int]) -> dict[str, bytes]:
    arr = np.random.default_rng(0).random(shape, dtype=np.float32)
    raw = arr.tobytes()
    tensor = {"name": "input-0", "shape": shape, "datatype": "FP32"}
    head = json.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": len(raw)}}],
                       "parameters": {"binary_data_output": True}}).encode()
    binary = post("/v2/models/echo/infer", head + raw, {"Inference-Header-Content-Length": len(head)})
    json_body = post("/v2/models/echo/infer", json.dumps({"inputs": [{**tensor, "data": arr.ravel().tolist()}]}).encode())
    return {"rest-binary": binary, "rest-json": json_body, "_raw": raw}


async def _drive_http(port: int, raw: bytes, n: int, conns: int, check) -> tuple[list[float], int]:
    lat: list[float] = []
    count = [0]
    errors = [0]

    async def one():
        c = await Conn.open(port)
        try:
            while count[0] < n:
                count[0] += 1
                t = time.perf_counter()
                status, headers, body = await c.request(raw)
                lat.append(time.perf_counter() - t)
                if status != 200 or not check(headers, body):
                    errors[0] += 1
        finally:
            c.close()

    await asyncio.gather(*(one() for _ in range(conns)))
    return lat, errors[0]


async def _drive_grpc(port: int, shape: list[int], raw: bytes, n: int, conns: int) -> tuple[list[float], int]:
    import grpc

    from modelport.wire.grpc import grpc_predict_v2_pb2 as pb
    from modelport.wire.grpc import grpc_predict_v2_pb2_grpc as pbg

    req = pb.ModelInferRequest(model_name="echo")
    t = req.inputs.add()
    t.name, t.datatype = "input-0", "FP32"
    t.shape.extend(shape)
    req.raw_input_contents.append(raw)
    opts = [("grpc.max_receive_message_length", 256 << 20), ("grpc.max_send_message_length", 256 << 20)]
    lat: list[float] = []
    errors = [0]
    count = [0]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=opts) as ch:
        stub = pbg.GRPCInferenceServiceStub(ch)

        async def one():
            while count[0] < n:
                count[0] += 1
                t0 = time.perf_counter()
                try:
                    resp = await stub.ModelInfer(req)
                    if len(resp.raw_output_contents[0]) != len(raw):
                        errors[0] += 1
                except grpc.RpcError:
                    errors[0] += 1
                lat.append(time.perf_counter() - t0)

        await asyncio.gather(*(one() for _ in range(conns)))
    return lat, errors[0]


async def _echo_floor(raw_len: int):
    """Loopback HTTP echo: reads a Content-Length body, answers it as is. The memcpy-bound floor."""

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
                writer.write(body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0, limit=1 << 24)


async def large(args) -> str:
    tmp = Path(tempfile.mkdtemp(prefix="bench-large-"))
    model_folder(tmp / "models", "echo", {"implementation": "modelport_echo.EchoModel"})
    server = Server(tmp / "models", ["--grpc-max-message-size", str(256 << 20)] if _has_flag("--grpc-max-message-size") else [])
    rows = ["| tensor | path | MB/s (in+out) | p50 ms | p99 ms | errors | server CPU ms/req |", "|---|---|---|---|---|---|---|"]
    try:
        log(f"modelport ready in {await server.ready():.1f}s")
        n, conns = args.large_requests, args.large_conns
        for label, shape in SHAPES.items():
            bodies = _v2_bodies(shape)
            raw = bodies.pop("_raw")
            size = len(raw)
            floor = await _echo_floor(size)
            fport = floor.sockets[0].getsockname()[1]
            cases = [("echo floor (loopback HTTP, asyncio)", "floor", post("/", raw))] + [(k, k, v) for k, v in bodies.items()]
            cases.append(("grpc-raw", "grpc", None))
            for name, kind, body in cases:
                c0 = server.cpu()
                t0 = time.perf_counter()
                if kind == "floor":
                    await _drive_http(fport, body, 20, conns, lambda h, b: True)
                    t0 = time.perf_counter()
                    lat, err = await _drive_http(fport, body, n, conns, lambda h, b: len(b) == size)
                elif kind == "grpc":
                    await _drive_grpc(server.grpc, shape, raw, 10, conns)
                    c0, t0 = server.cpu(), time.perf_counter()
                    lat, err = await _drive_grpc(server.grpc, shape, raw, n, conns)
                else:
                    check = (lambda h, b: len(b) > size) if kind == "rest-binary" else (lambda h, b: len(b) > size)
                    await _drive_http(server.http, body, 10, conns, check)
                    c0, t0 = server.cpu(), time.perf_counter()
                    lat, err = await _drive_http(server.http, body, n, conns, check)
                wall = time.perf_counter() - t0
                cpu = "" if kind == "floor" else f"{(server.cpu() - c0) / n * 1e3:.2f}"
                wire = size * 2  # payload bytes in and out (the tensor, whatever its encoding)
                rows.append(f"| {label} | {name} | {wire * n / wall / 1e6:,.0f} | {pct(lat, 50) * 1e3:.2f} | "
                            f"{pct(lat, 99) * 1e3:.2f} | {err} | {cpu} |")
                log(rows[-1])
            floor.close()
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return ("## Large tensors (modelport, echo model; MB/s counts the tensor's bytes in and out)\n\n"
            f"{args.large_requests} requests per case, {args.large_conns} connection(s).\n\n" + "\n".join(rows))


def _has_flag(flag: str) -> bool:
    python, env = _python()
    out = subprocess.run([python, "-m", "modelport.cli", "serve", "--help"], env=env, capture_output=True, text=True).stdout
    return flag in out


# -- many models ---------------------------------------------------------------------------------------
def _iris_v1(name: str) -> bytes:
    return post(f"/v1/models/{name}:predict", b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}')


async def _latency(port: int, names: list[str], n: int) -> list[float]:
    conn = await Conn.open(port)
    lat = []
    try:
        for i in range(n):
            raw = _iris_v1(names[i % len(names)])
            t = time.perf_counter()
            status, _, _ = await conn.request(raw)
            lat.append(time.perf_counter() - t)
            if status != 200:
                raise RuntimeError(f"status {status}")
    finally:
        conn.close()
    return lat


async def models(args) -> str:
    joblib = iris_joblib()
    rows = ["| models | time to ready s | RSS MiB | p50 ms | p99 ms (1 conn, round-robin over the models) |", "|---|---|---|---|---|"]
    for count in (1, args.models):
        tmp = Path(tempfile.mkdtemp(prefix="bench-models-"))
        for i in range(count):
            model_folder(tmp / "models", f"iris{i}", {"implementation": "sklearn"}, joblib)
        server = Server(tmp / "models")
        try:
            ready = await server.ready()
            names = [f"iris{i}" for i in range(count)]
            await _latency(server.http, names, 200)
            lat = await _latency(server.http, names, args.models_requests)
            rows.append(f"| {count} | {ready:.1f} | {server.rss():.0f} | {pct(lat, 50) * 1e3:.2f} | {pct(lat, 99) * 1e3:.2f} |")
            log(rows[-1])
        finally:
            server.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    return "## Many models (modelport, built-in sklearn runtime, iris LogisticRegression each)\n\n" + "\n".join(rows)


# -- many connections ----------------------------------------------------------------------------------
async def conns(args) -> str:
    joblib = iris_joblib()
    tmp = Path(tempfile.mkdtemp(prefix="bench-conns-"))
    model_folder(tmp / "models", "iris", {"implementation": "sklearn"}, joblib)
    server = Server(tmp / "models")
    rows = ["| connections | target req/s | achieved req/s | p50 ms | p99 ms | errors | server CPU us/req |", "|---|---|---|---|---|---|---|"]
    try:
        await server.ready()
        raw = _iris_v1("iris")
        count, rate, seconds = args.conns_count, args.conns_rate, args.conns_seconds
        opened = await asyncio.gather(*(Conn.open(server.http) for _ in range(count)), return_exceptions=True)
        live = [c for c in opened if isinstance(c, Conn)]
        errors = len(opened) - len(live)
        lat: list[float] = []
        period = len(live) / rate  # each connection sends one request per period, staggered

        async def one(i, c):
            nonlocal errors
            await asyncio.sleep(period * i / len(live))
            end = time.perf_counter() + seconds
            nxt = time.perf_counter()
            while nxt < end:
                t = time.perf_counter()
                try:
                    status, _, _ = await asyncio.wait_for(c.request(raw), 10)
                    if status != 200:
                        errors += 1
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                    errors += 1
                    return
                lat.append(time.perf_counter() - t)
                nxt += period
                await asyncio.sleep(max(0.0, nxt - time.perf_counter()))

        c0, t0 = server.cpu(), time.perf_counter()
        await asyncio.gather(*(one(i, c) for i, c in enumerate(live)))
        wall = time.perf_counter() - t0
        cpu = (server.cpu() - c0) / max(1, len(lat)) * 1e6
        for c in live:
            c.close()
        rows.append(f"| {count} ({len(live)} open) | {rate} | {len(lat) / wall:,.0f} | {pct(lat, 50) * 1e3:.2f} | "
                    f"{pct(lat, 99) * 1e3:.2f} | {errors} | {cpu:.0f} |")
        log(rows[-1])
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return ("## Many connections (modelport, built-in sklearn runtime, V1 iris [1,4])\n\n"
            f"Each keep-alive connection sends one request every connections/rate seconds, for {args.conns_seconds}s.\n\n" + "\n".join(rows))


# -- memory --------------------------------------------------------------------------------------------
async def memory(args) -> str:
    joblib = iris_joblib()
    tmp = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    model_folder(tmp / "models", "iris", {"implementation": "sklearn"}, joblib)
    server = Server(tmp / "models")
    total, step = args.memory_requests, max(1, args.memory_requests // 20)
    v2 = post("/v2/models/iris/infer", json.dumps({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32",
                                                                "data": [5.1, 3.5, 1.4, 0.2]}]}).encode())
    v1 = _iris_v1("iris")
    samples = []
    try:
        await server.ready()
        done = 0
        while done < total:
            lat, err = await _drive_http(server.http, v1 if (done // step) % 2 else v2, step, 8, lambda h, b: True)
            done += step
            samples.append((done, server.rss()))
            if err:
                raise RuntimeError(f"{err} failed requests")
            log(f"  {done:>9,} requests  RSS {samples[-1][1]:.1f} MiB")
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    # Growth after warm-up: the last sample against the one at 25 % (allocator pools settle first).
    base = samples[len(samples) // 4][1]
    growth = samples[-1][1] - base
    verdict = "no growth" if growth < max(2.0, 0.02 * base) else "GROWTH"
    rows = ["| requests | RSS MiB |", "|---|---|"] + [f"| {n:,} | {r:.1f} |" for n, r in samples]
    return (f"## Memory (modelport, sklearn runtime, V2 and V1 iris alternating, 8 connections)\n\n"
            f"RSS after 25 %: {base:.1f} MiB, at the end: {samples[-1][1]:.1f} MiB ({growth:+.1f} MiB): **{verdict}**\n\n"
            + "\n".join(rows))


SCENARIOS = {"large": large, "models": models, "conns": conns, "memory": memory}


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=list(SCENARIOS))
    p.add_argument("--large-requests", type=int, default=200)
    p.add_argument("--large-conns", type=int, default=1)
    p.add_argument("--models", type=int, default=200, help="models scenario: how many models")
    p.add_argument("--models-requests", type=int, default=2000)
    p.add_argument("--conns-count", type=int, default=1000)
    p.add_argument("--conns-rate", type=int, default=500, help="conns scenario: total requests per second")
    p.add_argument("--conns-seconds", type=int, default=20)
    p.add_argument("--memory-requests", type=int, default=1_000_000)
    args = p.parse_args()
    print(asyncio.run(SCENARIOS[args.scenario](args)))


if __name__ == "__main__":
    main()

"""Scenarios beyond iris throughput: large tensors, many models, many connections, memory.

    python bench/run.py --scenario large     # [1,3,224,224] and [64,1024] FP32: REST binary, REST JSON, gRPC raw
    python bench/run.py --scenario models    # 200 small models in one server vs one model
    python bench/run.py --scenario conns     # 1,000 keep-alive connections at a fixed request rate
    python bench/run.py --scenario memory    # RSS sampled over many requests (a leak check)

Each starts ``modelport serve`` (the harness's modelport venv when it exists, else this Python with
the checkout on PYTHONPATH) and drives it from an asyncio client in this process: exact request
counts, per-request latency, server CPU and RSS from /proc. The large-tensor scenario also measures
a loopback echo server (asyncio, bytes in -> the same bytes out, framed as HTTP) as the
memcpy-bound floor (and a grpc.aio echo for gRPC), each in its own process (bench/echo_floor.py),
and drives KServe and MLServer serving an echo model of their own (bench/peers/*_echo.py) from
their venvs under bench/.venvs, one server at a time. The other scenarios drive modelport only.
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
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":  # KServe's binary answers
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")  # no trailers are sent
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            body = b"".join(parts)
        else:
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


def post(path: str, body: bytes, extra: dict | None = None, content_type: str = "application/json") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
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
GRPC_OPTIONS = [("grpc.max_receive_message_length", 256 << 20), ("grpc.max_send_message_length", 256 << 20)]


def _v2_bodies(shape: list[int]) -> dict[str, bytes]:
    arr = np.random.default_rng(0).random(shape, dtype=np.float32)
    raw = arr.tobytes()
    tensor = {"name": "input-0", "shape": shape, "datatype": "FP32"}
    head = json.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": len(raw)}}],
                       "parameters": {"binary_data_output": True}}).encode()
    # application/octet-stream, as Triton's client sends it: KServe (FastAPI) refuses a binary body labelled JSON.
    binary = post("/v2/models/echo/infer", head + raw, {"Inference-Header-Content-Length": len(head)}, "application/octet-stream")
    json_body = post("/v2/models/echo/infer", json.dumps({"inputs": [{**tensor, "data": arr.ravel().tolist()}]}).encode())
    return {"rest-binary": binary, "rest-json": json_body, "_raw": raw, "_array": arr}


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


def _grpc_request(shape: list[int], raw: bytes):
    from modelport.wire.grpc import grpc_predict_v2_pb2 as pb

    req = pb.ModelInferRequest(model_name="echo")
    t = req.inputs.add()
    t.name, t.datatype = "input-0", "FP32"
    t.shape.extend(shape)
    req.raw_input_contents.append(raw)
    return req


def _grpc_answer(resp) -> bytes | None:
    """The echoed tensor's bytes from a ModelInferResponse: raw, or typed fp32 contents."""
    if resp.raw_output_contents:
        return resp.raw_output_contents[0]
    if resp.outputs and resp.outputs[0].contents.fp32_contents:
        return np.asarray(resp.outputs[0].contents.fp32_contents, np.float32).tobytes()
    return None


async def _drive_grpc(port: int, shape: list[int], raw: bytes, n: int, conns: int) -> tuple[list[float], int]:
    import grpc

    from modelport.wire.grpc import grpc_predict_v2_pb2_grpc as pbg

    req = _grpc_request(shape, raw)
    lat: list[float] = []
    errors = [0]
    count = [0]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=GRPC_OPTIONS) as ch:
        stub = pbg.GRPCInferenceServiceStub(ch)

        async def one():
            while count[0] < n:
                count[0] += 1
                t0 = time.perf_counter()
                try:
                    resp = await stub.ModelInfer(req)
                    # Raw answers are checked by size only (the exact check is _verify's, once per case).
                    if len(resp.raw_output_contents[0] if resp.raw_output_contents else _grpc_answer(resp) or b"") != len(raw):
                        errors[0] += 1
                except grpc.RpcError:
                    errors[0] += 1
                lat.append(time.perf_counter() - t0)

        await asyncio.gather(*(one() for _ in range(conns)))
    return lat, errors[0]


def _binary_answer(headers: dict, body: bytes) -> bytes | None:
    length = headers.get(b"inference-header-content-length")
    if length is None:
        return None
    return body[int(length):]


async def _verify(kind: str, port: int, body: bytes | None, arr: np.ndarray) -> str:
    """One request outside the timing, its answer decoded in full and compared with the input:
    every server in the table answers the same tensor, byte for byte. '' when it does."""
    raw = arr.tobytes()
    if kind == "grpc":
        import grpc

        from modelport.wire.grpc import grpc_predict_v2_pb2_grpc as pbg

        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=GRPC_OPTIONS) as ch:
            try:
                resp = await pbg.GRPCInferenceServiceStub(ch).ModelInfer(_grpc_request(list(arr.shape), raw))
            except grpc.RpcError as exc:
                return f"gRPC {exc.code().name}: {exc.details()}"[:200]
        got = _grpc_answer(resp)
        how = "raw" if resp.raw_output_contents else "typed"
        return "" if got == raw else f"gRPC answer ({how}) differs from the input"
    status, headers, answer = await http_once(port, body)
    if status != 200:
        return f"HTTP {status}: {answer[:200]!r}"
    if kind == "http-echo":
        return "" if answer == raw else "echo differs"
    if kind == "rest-binary":
        got = _binary_answer(headers, answer)
        if got is None:
            return "answered JSON, not binary (no Inference-Header-Content-Length)"
        return "" if got == raw else "binary answer differs from the input"
    out = json.loads(answer)["outputs"][0]
    got = np.asarray(out["data"], np.float32).reshape(out["shape"])
    return "" if np.array_equal(got, arr) else "JSON answer differs from the input"


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and all its descendants (MLServer infers in worker processes)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += sum(cpu_times(p))
        except OSError:
            continue
        todo += children.get(p, [])
    return total


class Proc(Server):
    """Any server under test started from a command line (peers, floors); same ready/cpu/stop."""

    def __init__(self, argv: list[str], env: dict, http: int | None, grpc: int | None, log_path: Path, cwd: Path | None = None):
        self.http, self.grpc = http, grpc
        self.log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    async def ready(self, timeout: float = 180) -> float:
        if self.http is not None:
            return await super().ready(timeout)
        import grpc  # the gRPC echo has no HTTP: wait for its port

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {Path(self.log.name).read_text()[-2000:]}")
            async with grpc.aio.insecure_channel(f"127.0.0.1:{self.grpc}") as ch:
                try:
                    await asyncio.wait_for(ch.channel_ready(), 1)
                    return time.perf_counter() - self.t0
                except asyncio.TimeoutError:
                    pass
        raise RuntimeError("server not ready")

    def cpu(self) -> float:
        return _tree_cpu(self.proc.pid)

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, 15)  # MLServer's workers too
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        self.log.close()


def _peer_python(venv: str) -> Path | None:
    python = BENCH / ".venvs" / venv / "bin" / "python"
    return python if python.exists() else None


def _peer_env(extra: dict | None = None) -> dict:
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONWARNINGS")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith(("MODELPORT_", "MLSERVER_", "KSERVE_"))}
    env["PYTHONPATH"] = str(BENCH / "peers")
    env.update(extra or {})
    return env


def _start_large(name: str, work: Path) -> tuple[Server, tuple[str, ...]] | None:
    """Start one server of the large-tensor table; None when its venv is missing. Returns it and the
    paths it serves (the rest get a 'not supported' row)."""
    work.mkdir(parents=True, exist_ok=True)
    http, grpc_port = free_port(), free_port()
    if name in ("echo-floor-http", "echo-floor-grpc"):
        python, env = _python()
        kind, port = ("http", http) if name.endswith("http") else ("grpc", grpc_port)
        argv = [python, str(BENCH / "echo_floor.py"), kind, str(port)]
        return Proc(argv, env, http if kind == "http" else None, grpc_port if kind == "grpc" else None, work / "server.log"), ()
    if name == "modelport":
        model_folder(work / "models", "echo", {"implementation": "modelport_echo.EchoModel"})
        flags = ["--grpc-max-message-size", str(256 << 20)] if _has_flag("--grpc-max-message-size") else []
        return Server(work / "models", flags), ("rest-binary", "rest-json", "grpc-raw")
    if name == "kserve":
        python = _peer_python("kserve")
        if python is None:
            return None
        sys.path.insert(0, str(BENCH))
        from harness.servers import KSERVE_QUIET_ENV, KSERVE_QUIET_LOG_CONFIG

        log_config = work / "kserve-log.json"
        log_config.write_text(json.dumps(KSERVE_QUIET_LOG_CONFIG))
        argv = [str(python), str(BENCH / "peers" / "kserve_echo.py"), "--http_port", str(http), "--grpc_port", str(grpc_port),
                "--grpc_max_send_message_length", str(256 << 20), "--grpc_max_receive_message_length", str(256 << 20),
                "--enable_latency_logging", "False", "--log_config_file", str(log_config)]
        return Proc(argv, _peer_env(KSERVE_QUIET_ENV), http, grpc_port, work / "server.log", cwd=work), (
            "rest-binary", "rest-json", "grpc-raw")
    if name.startswith("mlserver"):
        if _peer_python("mlserver") is None:
            return None
        settings = {"host": "127.0.0.1", "http_port": http, "grpc_port": grpc_port, "metrics_port": free_port(),
                    "grpc_max_message_length": 256 << 20}
        if name == "mlserver-pw0-quiet":
            settings.update(parallel_workers=0, debug=False)
        repo = work / "models"
        (repo / "echo").mkdir(parents=True, exist_ok=True)
        (repo / "settings.json").write_text(json.dumps(settings))
        (repo / "echo" / "model-settings.json").write_text(json.dumps({"name": "echo", "implementation": "mlserver_echo.EchoModel"}))
        argv = [str(BENCH / ".venvs" / "mlserver" / "bin" / "mlserver"), "start", str(repo)]
        return Proc(argv, _peer_env(), http, grpc_port, work / "server.log", cwd=work), ("rest-json", "grpc-raw")
    raise ValueError(f"unknown large-tensor server {name!r}")


LARGE_SERVERS = ["echo-floor-http", "echo-floor-grpc", "modelport", "kserve", "mlserver-pw0-quiet", "mlserver"]
LARGE_NOTES = {
    "echo-floor-http": "bench/echo_floor.py http: its own process on uvloop, asyncio streams, glibc malloc "
                       "tuned as modelport tunes it; reads a Content-Length body, writes it back (two writes: head, body)",
    "echo-floor-grpc": "bench/echo_floor.py grpc: grpc.aio, ModelInfer with identity (de)serializers; the "
                       "request's bytes answered with raw_input_contents relabelled raw_output_contents",
    "modelport": "modelport serve, bench/peers/modelport_echo.py",
    "kserve": "KServe 0.21 quiet (latency/access logs off), bench/peers/kserve_echo.py with kserve's "
              "get_predict_input/get_predict_response",
    "mlserver-pw0-quiet": "MLServer, parallel_workers=0, debug=false (its best configuration), bench/peers/mlserver_echo.py",
    "mlserver": "MLServer as shipped (parallel_workers=1: inference in a worker process), bench/peers/mlserver_echo.py",
}


async def _measure_large(server, kind: str, port: int, shape: list[int], body: bytes | None, raw: bytes, count: int, conns: int) -> dict:
    """One round: a short warm-up, then ``count`` requests; MB/s, latencies, errors, server CPU."""
    size = len(raw)
    if kind == "grpc":
        await _drive_grpc(port, shape, raw, max(3, count // 10), conns)
        c0, t0 = server.cpu(), time.perf_counter()
        lat, err = await _drive_grpc(port, shape, raw, count, conns)
    else:
        check = lambda h, b: len(b) >= size  # noqa: E731 - the exact check is _verify's
        await _drive_http(port, body, max(3, count // 10), conns, check)
        c0, t0 = server.cpu(), time.perf_counter()
        lat, err = await _drive_http(port, body, count, conns, check)
    wall = time.perf_counter() - t0
    return {"mbs": size * 2 * count / wall / 1e6, "p50": pct(lat, 50) * 1e3, "p99": pct(lat, 99) * 1e3,
            "errors": err, "cpu_s": server.cpu() - c0, "count": count}


async def large(args) -> str:
    from echo_floor import _tune_malloc

    _tune_malloc()  # the client (the same for every server) does not page-fault its buffers in either
    tmp = Path(tempfile.mkdtemp(prefix="bench-large-"))
    n, conns, rounds = args.large_requests, args.large_conns, max(1, args.large_rounds)
    n_json = max(10, n // 5)  # JSON of 150k floats is slow everywhere; fewer requests keep the run short
    names = [s for s in args.large_servers.split(",") if s]
    bodies = {label: _v2_bodies(shape) for label, shape in SHAPES.items()}
    results: dict[tuple[str, str], list[dict]] = {}  # (tensor, path group) -> one dict per server
    notes = []
    try:
        for name in names:
            started = _start_large(name, tmp / name)
            if started is None:
                notes.append(f"- {name}: skipped (no venv under bench/.venvs; `python bench/run.py --setup-only` makes it)")
                continue
            server, paths = started
            try:
                log(f"{name} ready in {await server.ready():.1f}s")
                for label, shape in SHAPES.items():
                    b = bodies[label]
                    raw, arr = b["_raw"], b["_array"]
                    if name == "echo-floor-http":
                        cases = [("http-echo", "http", post("/", raw))]
                    elif name == "echo-floor-grpc":
                        cases = [("grpc-echo", "grpc", None)]
                    else:
                        cases = [(p, "grpc" if p == "grpc-raw" else "http", b.get(p)) for p in ("rest-binary", "rest-json", "grpc-raw")]
                    for path, kind, body in cases:
                        group = {"grpc-echo": "grpc-raw", "http-echo": "rest-binary"}.get(path, path)
                        entry = {"label": label, "path": path, "server": name}
                        results.setdefault((label, group), []).append(entry)
                        if paths and path not in paths:
                            entry["unsupported"] = True
                            continue
                        port = server.grpc if kind == "grpc" else server.http
                        entry["wrong"] = await _verify("grpc" if kind == "grpc" else path, port, body, arr)
                        count = n_json if path == "rest-json" else n
                        runs = [await _measure_large(server, kind, port, shape, body, raw, count, conns) for _ in range(rounds)]
                        # The median round by MB/s stands for the case (the cores are shared: rounds differ);
                        # CPU per request is over every round, errors are summed.
                        runs.sort(key=lambda r: r["mbs"])
                        entry.update(runs[len(runs) // 2])
                        entry["errors"] = sum(r["errors"] for r in runs)
                        entry["cpu_ms"] = sum(r["cpu_s"] for r in runs) / sum(r["count"] for r in runs) * 1e3
                        entry["spread"] = (runs[0]["mbs"], runs[-1]["mbs"])
                        log(f"{label} {path} {name}: {entry['mbs']:,.0f} MB/s (rounds {runs[0]['mbs']:,.0f}-{runs[-1]['mbs']:,.0f}), "
                            f"p50 {entry['p50']:.2f} p99 {entry['p99']:.2f} ms, CPU {entry['cpu_ms']:.2f} ms/req")
            finally:
                server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _large_report(results, names, notes, n, n_json, conns, rounds)


def _large_report(results: dict, names: list[str], notes: list[str], n: int, n_json: int, conns: int, rounds: int) -> str:
    rows = ["| tensor | path | server | MB/s (in+out) | of HTTP echo | of gRPC echo | MB/s rounds | p50 ms | p99 ms | errors | server CPU ms/req |",
            "|---|---|---|--:|--:|--:|--:|--:|--:|---|--:|"]
    for label in SHAPES:
        floors = {e["path"]: e.get("mbs") for group in ("rest-binary", "grpc-raw") for e in results.get((label, group), [])
                  if e["path"] in ("http-echo", "grpc-echo")}
        for group in ("rest-binary", "grpc-raw", "rest-json"):
            for e in results.get((label, group), []):
                if e.get("unsupported"):
                    rows.append(f"| {label} | {e['path']} | {e['server']} | not supported | | | | | | | |")
                    continue
                ratio = lambda floor: f"{e['mbs'] / floor:.0%}" if floor and e["path"] != "rest-json" else ""  # noqa: E731
                grpc_ratio = ratio(floors.get("grpc-echo")) if e["path"] in ("grpc-raw", "grpc-echo") else ""
                wrong = f" ({e['wrong']})" if e.get("wrong") else ""
                rows.append(
                    f"| {label} | {e['path']} | {e['server']} | {e['mbs']:,.0f} | {ratio(floors.get('http-echo'))} | {grpc_ratio} | "
                    f"{e['spread'][0]:,.0f}-{e['spread'][1]:,.0f} | {e['p50']:.2f} | {e['p99']:.2f} | {e['errors']}{wrong} | {e['cpu_ms']:.2f} |")
    return ("## Large tensors (echo model; MB/s counts the tensor's bytes in and out)\n\n"
            f"{n} requests per round ({n_json} for rest-json), {rounds} round(s) per case, {conns} connection(s), one server "
            "at a time. A case shows its median round by MB/s (its p50/p99 too), the range over the rounds, and CPU "
            "per request over all rounds; every case's answer is checked byte for byte once (errors column).\n\n"
            + "\n".join(rows) + "\n\nServers:\n" + "\n".join(f"- {k}: {LARGE_NOTES[k]}" for k in names if k in LARGE_NOTES)
            + ("\n" + "\n".join(notes) if notes else ""))


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
    p.add_argument("--large-rounds", type=int, default=3, help="large scenario: rounds per case (the median is shown)")
    p.add_argument("--large-servers", default=",".join(LARGE_SERVERS), help="large scenario: comma list, in order")
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

"""Scenarios beyond iris throughput: large tensors, many models, many connections, memory.

    python bench/run.py --scenario large     # [1,3,224,224] and [64,1024] FP32: REST binary, REST JSON, gRPC raw
    python bench/run.py --scenario models    # 200 small models in one server vs one model, against KServe and MLServer
    python bench/run.py --scenario conns     # 1,000 keep-alive connections at a fixed request rate, against KServe and MLServer
    python bench/run.py --scenario memory    # RSS sampled over many requests (a leak check)

``memory`` starts ``modelport serve`` (the harness's modelport venv when it exists, else
this Python with the checkout on PYTHONPATH; BENCH_SCENARIO_CHECKOUT=1 forces the checkout). ``models``
and ``conns`` start, one after another, each config of ``--servers`` (``PEERS``: modelport's sklearn
runtime, KServe quiet and as shipped, MLServer at its best and as shipped; the peers from the
harness's venvs under bench/.venvs/, see ``peer_server``) on the same iris joblib, one copy per model.
Each server runs in its own process group; CPU and RSS/PSS are read from /proc for its whole process
tree (MLServer's worker processes included). Clients are asyncio in this process (exact request counts,
per-request latency), except ``conns``, which runs its connections in ``--conns-clients`` child
processes (``scenarios.py conns-client ...``) on a fixed schedule and reports how late the clients
were against it. ``large`` starts, one at a time, loopback echo servers (bench/echo_floor.py, each in
its own process: HTTP bytes in -> the same bytes out, the memcpy-bound floor; and a grpc.aio echo),
modelport, and KServe and MLServer serving an echo model of their own (bench/peers/*_echo.py).
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
from cpuprobe import free_port  # noqa: E402
from harness import envs, procs  # noqa: E402
from harness import servers as hservers  # noqa: E402


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _python() -> tuple[str, dict]:
    venv = BENCH / ".venvs" / "modelport" / "bin" / "python"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(BENCH / "peers")]))
    if venv.exists() and not os.environ.get("BENCH_SCENARIO_CHECKOUT"):
        return str(venv), env
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(BENCH / "peers")])
    return sys.executable, env


def _peer_env(extra: dict | None = None) -> dict:
    """A peer's environment: ours without Python/server settings that would leak into it."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONWARNINGS")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith(("MODELPORT_", "MLSERVER_", "KSERVE_"))}
    return {**env, "PYTHONPATH": str(BENCH / "peers"), **(extra or {})}


class Server:
    """One server under test on free ports, in its own process group (harness.procs.ServerProcess):
    whole-tree CPU and memory, SIGTERM then the group on stop. ``Server(folder, flags)`` is
    ``modelport serve`` on a folder of models; peers come from ``peer_server``."""

    def __init__(self, folder: Path, flags: list[str] = (), argv: list[str] | None = None, env: dict | None = None,
                 models: list[str] = (), ports: tuple[int, int] | None = None):
        self.http, self.grpc = ports or (free_port(), free_port())
        if argv is None:
            python, env = _python()
            argv = [python, "-m", "modelport.cli", "serve", str(folder), "--host", "127.0.0.1", "--http-port",
                    str(self.http), "--grpc-port", str(self.grpc), *flags]
        self.models = list(models)  # ready means every one of these answers GET /v2/models/<name>/ready 200
        self.proc = procs.ServerProcess(argv, env, cwd=folder.parent, log_path=folder.parent / "server.log")
        self.proc.start()
        self.t0 = self.proc.t_spawn

    async def ready(self, timeout: float = 600) -> float:
        """Seconds from spawn until /v2/health/ready and every model's ready endpoint answer 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise RuntimeError(f"server exited: {self.proc.log_path.read_text()[-2000:]}")
            try:
                status, _, _ = await http_once(self.http, b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n")
                if status == 200 and await self._models_ready():
                    return time.perf_counter() - self.t0
            except (OSError, asyncio.IncompleteReadError):
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError("server not ready")

    async def _models_ready(self) -> bool:
        if not self.models:
            return True
        conn = await Conn.open(self.http)
        try:
            for name in self.models:
                status, _, _ = await conn.request(f"GET /v2/models/{name}/ready HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                if status != 200:
                    return False
            return True
        finally:
            conn.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> float:
        return procs.tree_cpu_seconds(self.proc.pid)

    def memory(self) -> dict:
        """RSS and PSS (MiB) of the whole process tree (a forked worker's shared pages count once in PSS)."""
        return {k: v / 2**20 for k, v in procs.tree_memory_bytes(self.proc.pid).items()}

    def rss(self) -> float:
        return self.memory()["rss"]

    def stop(self) -> None:
        self.proc.stop()


# -- peers on a folder of iris models ------------------------------------------------------------------
# The configs, as in the main bench (harness/servers.py): modelport with its built-in sklearn runtime;
# KServe as shipped and with its per-request logging off; MLServer at its best (parallel_workers 0,
# no access log) and as shipped (parallel_workers 1: inference in a worker process, debug access log).
PEERS = ("modelport", "kserve-quiet", "kserve", "mlserver-pw0-quiet", "mlserver")


def peer_server(kind: str, root: Path, names: list[str], joblib: Path) -> Server:
    """Start server config ``kind`` serving ``names``, each the iris joblib copied into its own folder."""
    repo = root / "models"
    for name in names:
        settings = {"implementation": "sklearn"} if kind == "modelport" else None
        model_folder(repo, name, settings, joblib)
    if kind == "modelport":
        return Server(repo, models=names)
    http, grpc = free_port(), free_port()
    if kind.startswith("kserve"):
        argv = [str(envs.python("kserve")), str(BENCH / "peers" / "kserve_many.py"), "--models_dir", str(repo),
                "--http_port", str(http), "--grpc_port", str(grpc)]
        extra = {}
        if kind == "kserve-quiet":
            log_config = root / "kserve-log.json"
            log_config.write_text(json.dumps(hservers.KSERVE_QUIET_LOG_CONFIG))
            argv += ["--enable_latency_logging", "False", "--log_config_file", str(log_config)]
            extra = hservers.KSERVE_QUIET_ENV
        return Server(repo, argv=argv, env=_peer_env(extra), models=names, ports=(http, grpc))
    if kind.startswith("mlserver"):
        settings = {"host": "127.0.0.1", "http_port": http, "grpc_port": grpc, "metrics_port": free_port()}
        if kind == "mlserver-pw0-quiet":
            settings.update(parallel_workers=0, debug=False)
        (repo / "settings.json").write_text(json.dumps(settings))
        for name in names:
            (repo / name / "model-settings.json").write_text(json.dumps(
                {"name": name, "implementation": "mlserver_sklearn.SKLearnModel",
                 "parameters": {"uri": str(repo / name / "model.joblib")}}))
        argv = [str(envs.bin_path("mlserver", "mlserver")), "start", str(repo)]
        return Server(repo, argv=argv, env=_peer_env(), models=names, ports=(http, grpc))
    raise ValueError(f"unknown server {kind!r}; known: {', '.join(PEERS)}")


def peer_available(kind: str) -> bool:
    venv = "modelport" if kind == "modelport" else kind.split("-")[0]
    return venv == "modelport" or envs.python(venv).exists()


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


def model_folder(root: Path, name: str, settings: dict | None, joblib: Path | None = None) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    if settings is not None:
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


async def _drive_grpc(port: int, shape: list[int], raw: bytes, n: int, conns: int,
                      expect: int | None = None) -> tuple[list[float], int]:
    """``expect``: the answer's tensor size in bytes (default: the request's, an echo)."""
    import grpc

    from modelport.wire.grpc import grpc_predict_v2_pb2_grpc as pbg

    req = _grpc_request(shape, raw)
    want = len(raw) if expect is None else expect
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
                    if len(resp.raw_output_contents[0] if resp.raw_output_contents else _grpc_answer(resp) or b"") != want:
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


class GrpcOnlyServer(Server):
    """A server with no HTTP port (the gRPC echo floor): ready once its gRPC port takes a channel."""

    async def ready(self, timeout: float = 180) -> float:
        import grpc

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise RuntimeError(f"server exited: {self.proc.log_path.read_text()[-2000:]}")
            async with grpc.aio.insecure_channel(f"127.0.0.1:{self.grpc}") as ch:
                try:
                    await asyncio.wait_for(ch.channel_ready(), 1)
                    return time.perf_counter() - self.t0
                except asyncio.TimeoutError:
                    pass
        raise RuntimeError("server not ready")


def _peer_python(venv: str) -> Path | None:
    python = BENCH / ".venvs" / venv / "bin" / "python"
    return python if python.exists() else None


def _start_large(name: str, work: Path) -> tuple[Server, tuple[str, ...]] | None:
    """Start one server of the large-tensor table; None when its venv is missing. Returns it and the
    paths it serves (the rest get a 'not supported' row)."""
    work.mkdir(parents=True, exist_ok=True)
    http, grpc_port = free_port(), free_port()
    if name in ("echo-floor-http", "echo-floor-grpc"):
        python, env = _python()
        kind, port = ("http", http) if name.endswith("http") else ("grpc", grpc_port)
        argv = [python, str(BENCH / "echo_floor.py"), kind, str(port)]
        cls = Server if kind == "http" else GrpcOnlyServer
        return cls(work / "floor", argv=argv, env=env, ports=(http, grpc_port)), ()
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
        return Server(work / "kserve", argv=argv, env=_peer_env(KSERVE_QUIET_ENV), ports=(http, grpc_port)), (
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
        return Server(repo, argv=argv, env=_peer_env(), ports=(http, grpc_port)), ("rest-json", "grpc-raw")
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
V2_IRIS = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}).encode()


def _iris_v1(name: str) -> bytes:
    return post(f"/v1/models/{name}:predict", b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}')


def _iris_v2(name: str) -> bytes:
    return post(f"/v2/models/{name}/infer", V2_IRIS)


async def _latency(port: int, names: list[str], n: int) -> list[float]:
    """`n` V2 requests on one keep-alive connection, one at a time, round-robin over `names`."""
    conn = await Conn.open(port)
    raws = [_iris_v2(name) for name in names]
    lat = []
    try:
        for i in range(n):
            t = time.perf_counter()
            status, _, body = await conn.request(raws[i % len(raws)])
            lat.append(time.perf_counter() - t)
            if status != 200:
                raise RuntimeError(f"status {status}: {body[:200]!r}")
    finally:
        conn.close()
    return lat


def _servers(args) -> list[str]:
    wanted = [s for s in args.servers.split(",") if s]
    for kind in wanted:
        if kind not in PEERS:
            raise SystemExit(f"unknown server {kind!r}; known: {', '.join(PEERS)}")
    missing = [k for k in wanted if not peer_available(k)]
    for kind in missing:
        log(f"[skip] {kind}: its venv is missing (python bench/run.py --setup-only --servers {kind} makes it)")
    return [k for k in wanted if k not in missing]


async def models(args) -> str:
    joblib = iris_joblib()
    n = args.models_requests
    rows = [("| server | models | time to ready s | RSS MiB (tree) | PSS MiB | one model: p50 ms | p99 ms "
             "| all models round-robin: p50 ms | p99 ms | errors |"), "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for kind in _servers(args):
        for count in (1, args.models):
            tmp = Path(tempfile.mkdtemp(prefix=f"bench-models-{kind}-"))
            names = [f"iris{i}" for i in range(count)]
            server = peer_server(kind, tmp, names, joblib)
            try:
                ready = await server.ready()
                await _latency(server.http, names, max(200, count))  # warm-up: every model answers at least once
                one = await _latency(server.http, names[:1], n)
                spread = await _latency(server.http, names, n) if count > 1 else None
                mem = server.memory()
                cells = f"{pct(spread, 50) * 1e3:.2f} | {pct(spread, 99) * 1e3:.2f}" if spread else "– | –"
                rows.append(f"| {kind} | {count} | {ready:.1f} | {mem['rss']:.0f} | {mem['pss']:.0f} | "
                            f"{pct(one, 50) * 1e3:.2f} | {pct(one, 99) * 1e3:.2f} | {cells} | 0 |")
            except Exception as exc:  # noqa: BLE001 - the table says which server failed and why
                rows.append(f"| {kind} | {count} | failed: {' '.join(str(exc).split())[:150].replace('|', '/')} "
                            "| | | | | | | |")
            finally:
                server.stop()
                shutil.rmtree(tmp, ignore_errors=True)
            log(rows[-1])
    return ("## Many models (iris LogisticRegression each, one joblib copy per model folder)\n\n"
            f"Time to ready: spawn until `GET /v2/health/ready` and every model's `GET /v2/models/<name>/ready` "
            f"answer 200. RSS/PSS: the server's whole process tree after the requests. Latency: {n:,} V2 REST "
            f"requests, one at a time on one keep-alive connection, to model `iris0` only and then round-robin "
            f"over all models, after a warm-up that touches every model.\n\n"
            "- modelport: `modelport serve <folder>`, each model `{\"implementation\": \"sklearn\"}`; loads run "
            "concurrently (`asyncio.gather` over the models, each sync `load` in the server's hook threads: at "
            "most `--inference-threads`, default 4, at once).\n"
            "- kserve(-quiet): KServe's `sklearnserver` serves one model per process, so "
            "`bench/peers/kserve_many.py` registers one `kserve.Model` per folder (loaded one after another) "
            "in one `ModelServer`.\n"
            "- mlserver(-pw0-quiet): `mlserver start <folder>` with a `model-settings.json` per model "
            "(`mlserver_sklearn.SKLearnModel`, `parameters.uri`). As shipped (`mlserver`) every model is also "
            "loaded into the inference worker process.\n\n" + "\n".join(rows))


# -- many connections ----------------------------------------------------------------------------------
def _raise_nofile() -> tuple[int, int]:
    """Raise the soft fd limit to the hard one (servers started after this inherit it)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


async def conns_client(port: int, first: int, count: int, total: int, rate: float, seconds: float) -> dict:
    """One client process's share of the connections: connection g (of `total`) sends at
    t0 + (g/total + k) * period, period = total/rate, while that is inside the window; if its previous
    answer is late it sends at once, and the lateness is recorded (client lag, or a slow server)."""
    _raise_nofile()
    opened = await asyncio.gather(*(Conn.open(port) for _ in range(count)), return_exceptions=True)
    live = [(first + i, c) for i, c in enumerate(opened) if isinstance(c, Conn)]
    raw = _iris_v2("iris")
    gate = asyncio.Semaphore(32)

    async def warm(conn: Conn) -> None:  # one request per connection first: no first-request costs in the window
        async with gate:
            await asyncio.wait_for(conn.request(raw), 30)

    warmed = await asyncio.gather(*(warm(c) for _, c in live), return_exceptions=True)
    print(json.dumps({"open": len(live), "failed": count - len(live),
                      "warm_failed": sum(isinstance(w, BaseException) for w in warmed)}), flush=True)
    t0 = float(await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline))  # the start, wall clock
    base = time.perf_counter() + (t0 - time.time())
    period = total / rate
    lat: list[float] = []
    lag: list[float] = []
    errors = [count - len(live), 0]  # [connect, request]
    last_done = [base]

    async def one(g: int, conn: Conn):
        k = 0
        while True:
            at = base + (g / total + k) * period
            if at >= base + seconds:
                break
            k += 1
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            t = time.perf_counter()
            lag.append(t - at)
            try:
                status, _, _ = await asyncio.wait_for(conn.request(raw), 10)
                if status != 200:
                    errors[1] += 1
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                errors[1] += 1
                conn.close()
                try:
                    conn = await Conn.open(port)
                except OSError:
                    return
                continue
            done = time.perf_counter()
            lat.append(done - t)
            last_done[0] = max(last_done[0], done)
        conn.close()

    cpu0 = time.process_time()
    await asyncio.gather(*(one(g, c) for g, c in live))
    return {"lat": lat, "lag_p99": pct(lag, 99), "lag_max": max(lag) if lag else 0.0, "errors_connect": errors[0],
            "errors_request": errors[1], "span": last_done[0] - base, "cpu_s": time.process_time() - cpu0}


async def _drive_conns(server: Server, args) -> dict:
    """Run the connections in `args.conns_clients` client processes (this one only waits)."""
    count, rate, seconds, k = args.conns_count, args.conns_rate, args.conns_seconds, args.conns_clients
    shares = [count // k + (1 if i < count % k else 0) for i in range(k)]
    clients = []
    first = 0
    for share in shares:
        clients.append(await asyncio.create_subprocess_exec(
            sys.executable, __file__, "conns-client", str(server.http), str(first), str(share), str(count), str(rate),
            str(seconds), stdin=subprocess.PIPE, stdout=subprocess.PIPE))
        first += share
    opened = [json.loads(await c.stdout.readline()) for c in clients]
    c0 = server.cpu()
    start = time.time() + 0.5
    for c in clients:
        c.stdin.write(f"{start}\n".encode())
        await c.stdin.drain()
    results = [json.loads(await c.stdout.read()) for c in clients]
    for c in clients:
        await c.wait()
    cpu = server.cpu() - c0
    lat = [x for r in results for x in r["lat"]]
    return {
        "open": sum(o["open"] for o in opened), "lat": lat, "achieved": len(lat) / max(r["span"] for r in results),
        "errors": sum(r["errors_connect"] + r["errors_request"] for r in results),
        "lag_p99": max(r["lag_p99"] for r in results), "lag_max": max(r["lag_max"] for r in results),
        "client_cpu": sum(r["cpu_s"] for r in results) / seconds, "server_cpu_us": cpu / max(1, len(lat)) * 1e6,
        "server_cpu_frac": cpu / seconds,
    }


async def conns(args) -> str:
    joblib = iris_joblib()
    soft, hard = _raise_nofile()
    rows = [("| server | connections open | target req/s | achieved req/s | p50 ms | p99 ms | max ms | errors "
             "| client lag p99 ms | server CPU µs/req | server CPU % | RSS MiB (tree) |"),
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    client_cpu = []
    for kind in _servers(args):
        tmp = Path(tempfile.mkdtemp(prefix=f"bench-conns-{kind}-"))
        server = peer_server(kind, tmp, ["iris"], joblib)
        try:
            await server.ready()
            await _latency(server.http, ["iris"], 200)
            r = await _drive_conns(server, args)
            mem = server.memory()
            rows.append(f"| {kind} | {r['open']} | {args.conns_rate} | {r['achieved']:,.0f} | {pct(r['lat'], 50) * 1e3:.2f} | "
                        f"{pct(r['lat'], 99) * 1e3:.2f} | {max(r['lat']) * 1e3:.1f} | {r['errors']} | "
                        f"{r['lag_p99'] * 1e3:.1f} | {r['server_cpu_us']:.0f} | {r['server_cpu_frac'] * 100:.0f} | "
                        f"{mem['rss']:.0f} |")
            client_cpu.append(f"{kind} {r['client_cpu'] * 100:.0f} %")
        except Exception as exc:  # noqa: BLE001 - the table says which server failed and why
            rows.append(f"| {kind} | failed: {' '.join(str(exc).split())[:150].replace('|', '/')} | | | | | | | | | | |")
        finally:
            server.stop()
            shutil.rmtree(tmp, ignore_errors=True)
        log(rows[-1])
    return ("## Many connections (one iris model, V2 REST `[1,4]`, keep-alive)\n\n"
            f"{args.conns_count:,} connections, each sending one request every {args.conns_count / args.conns_rate:g} s "
            f"(staggered: {args.conns_rate:,} req/s in total) for {args.conns_seconds} s, from {args.conns_clients} "
            f"client processes (asyncio, raw HTTP/1.1). fd limit (soft, hard): {soft}, {hard}; servers inherit it. "
            "Every connection first sends one warm-up request (32 at a time), outside the measured window. "
            "Latency is from the moment a request is written; *client lag* is how late it was written against "
            "the schedule (a late answer on that connection, or a client that cannot keep up). Achieved req/s: "
            "completed requests / (last answer - start). Errors: connections refused plus failed or non-200 "
            f"requests. Client CPU (all client processes, share of one core): {', '.join(client_cpu)}.\n\n" + "\n".join(rows))


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

    if sys.argv[1:2] == ["conns-client"]:  # one client process of the conns scenario (started by _drive_conns)
        port, first, count, total, rate, seconds = sys.argv[2:8]
        result = asyncio.run(conns_client(int(port), int(first), int(count), int(total), float(rate), float(seconds)))
        print(json.dumps(result))
        return

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
    p.add_argument("--conns-clients", type=int, default=2, help="conns scenario: client processes")
    p.add_argument("--servers", default=",".join(PEERS), help="models/conns scenarios: server configs, comma list")
    args = p.parse_args()
    print(asyncio.run(SCENARIOS[args.scenario](args)))


if __name__ == "__main__":
    main()

"""Server CPU time per request, a figure that survives a loaded machine.

Starts one server, waits for readiness, sends a warm-up, then exactly N requests over C keep-alive
connections (one in flight each) from a small asyncio client, and reports the server process's
utime+stime (all its threads, from /proc/PID/stat) over those N requests ÷ N. Wall-clock req/s is
printed too but means little while other work shares the cores.

    python bench/cpuprobe.py --server floor --proto v2 -n 5000 -c 8
    python bench/cpuprobe.py --server raw-floor --proto v2 -n 5000 -c 8   # the floor's work, no ASGI
    python bench/cpuprobe.py --server modelport --model-dir bench/models/iris --proto v1
    python bench/cpuprobe.py --server modelport --proto grpc --h2load 5 -c 8    # gRPC under h2load
    python bench/cpuprobe.py --server grpc-floor --proto grpc --h2load 5 -c 8   # grpc.aio + predict
    python bench/cpuprobe.py --server grpc-canned --proto grpc --h2load 5 -c 8  # grpc.aio alone

``--server modelport`` runs ``python -m modelport.cli serve`` with this checkout on PYTHONPATH;
``--model-dir`` picks the model folder (bench/models/iris: plain predict; a folder with
``model.joblib`` and no implementation: the built-in sklearn runtime). ``grpc-floor`` is
bench/grpc_floor.py with ``--predict`` (grpc.aio, FP32 contents -> numpy -> the same predict) and
``grpc-canned`` the same server answering a canned response (grpc.aio's own cost per call);
``grpc-floor-sync`` and ``grpc-canned-sync`` run both on grpc's sync server (``--sync``), and
``grpc-floor-generic`` / ``grpc-canned-generic`` register generic handlers only (``--generic``), as modelport does,
and ``grpc-floor-grpclib`` / ``grpc-canned-grpclib`` serve them from grpclib (``--grpclib``: needs grpclib
importable, e.g. ``pip install --target DIR grpclib`` and PYTHONPATH=DIR).

gRPC load comes from a grpc.aio client in this process (N calls), or with ``--h2load S`` from h2load
replaying one framed ModelInferRequest (FP32 ``contents``, as the bench harness sends) for S seconds:
a C client that takes much less of the shared CPU than the Python one, and batches as real load does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
TICK = os.sysconf("SC_CLK_TCK")
GRPC_FLOORS = ("grpc-floor", "grpc-canned")  # bench/grpc_floor.py with and without --predict (-sync: --sync)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_times(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK  # utime, stime (all threads)


def cpu_seconds(pid: int) -> float:
    return sum(cpu_times(pid))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def iris_joblib() -> Path:
    path = BENCH / ".work" / "iris.joblib"
    if not path.exists():
        subprocess.run([sys.executable, str(BENCH / "train_iris.py"), str(path.parent)], check=True)
    return path


def start(server: str, model_dir: str | None, python: str, prefix: list[str] = (),
          env: dict[str, str] | None = None) -> tuple[subprocess.Popen, int, int, Path]:
    """Start a server; ``env``: extra environment for it (PYTHONPATH entries go first on its path)."""
    http, grpc = free_port(), free_port()
    extra = dict(env or {})
    path = extra.pop("PYTHONPATH", "")
    env = dict(os.environ, BENCH_IRIS_JOBLIB=str(iris_joblib()), **extra)
    if path:
        env["PYTHONPATH"] = os.pathsep.join([path, env.get("PYTHONPATH", "")])
    tmp = Path(tempfile.mkdtemp(prefix="cpuprobe-"))
    if server.startswith(GRPC_FLOORS):
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
        argv = [python, os.environ.get("GRPC_FLOOR_SCRIPT", str(BENCH / "grpc_floor.py")), str(grpc)]
        if server.startswith("grpc-floor"):
            argv.append("--predict")
        if server.endswith("-sync"):
            argv.append("--sync")
        if server.endswith("-generic"):
            argv.append("--generic")
        if server.endswith("-grpclib"):
            argv.append("--grpclib")
    elif server == "raw-floor":  # the floor's work without ASGI (bench/raw_floor.py)
        argv = [python, str(BENCH / "raw_floor.py"), str(http)]
    elif server == "lean-floor":  # the floor's ASGI app behind the leanest ASGI front end (bench/lean_asgi.py)
        argv = [python, str(BENCH / "lean_asgi.py"), str(http)]
    elif server == "floor":
        argv = [python, "-m", "uvicorn", "floor_app:app", "--app-dir", str(BENCH), "--loop", "uvloop",
                "--http", "httptools", "--no-access-log", "--host", "127.0.0.1", "--port", str(http), "--log-level", "warning"]
    else:
        folder = tmp / "models"
        src = Path(model_dir or BENCH / "models" / "iris")
        shutil.copytree(src, folder / src.name)
        target = folder / src.name
        if not any(target.glob("*.joblib")) and json.loads((target / "model-settings.json").read_text()).get("implementation") in (None, "sklearn"):
            shutil.copy(iris_joblib(), target / "model.joblib")
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(BENCH / "peers"), env.get("PYTHONPATH", "")])
        argv = [python, "-m", "modelport.cli", "serve", str(folder), "--host", "127.0.0.1",
                "--http-port", str(http), "--grpc-port", str(grpc)]
    argv = [*prefix, *argv]
    log = open(tmp / "server.log", "wb")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {(tmp / 'server.log').read_text()[-3000:]}")
        if server.startswith(GRPC_FLOORS):
            try:
                socket.create_connection(("127.0.0.1", grpc), timeout=1).close()
                return proc, http, grpc, tmp
            except OSError:
                time.sleep(0.2)
                continue
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/health/ready", timeout=2) as r:
                if r.status == 200:
                    return proc, http, grpc, tmp
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("server not ready in 120 s")


def request_bytes(proto: str, model: str, rows: list, port: int, headers: list[str] = ()) -> bytes:
    if proto == "v1":
        path, body = f"/v1/models/{model}:predict", json.dumps({"instances": rows})
    else:
        flat = [v for r in rows for v in r]
        body = json.dumps({"inputs": [{"name": "input-0", "shape": [len(rows), len(rows[0])], "datatype": "FP32", "data": flat}]})
        path = f"/v2/models/{model}/infer"
    extra = "".join(f"{h}\r\n" for h in headers)  # --header: e.g. an API key for a server with controls on
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n{body}").encode()


async def _conn(port: int, raw: bytes, count: list, total: int, statuses: dict) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while count[0] < total:
            count[0] += 1
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            statuses[status] = statuses.get(status, 0) + 1
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
    finally:
        writer.close()


async def drive(port: int, raw: bytes, total: int, conns: int) -> dict:
    count, statuses = [0], {}
    await asyncio.gather(*(_conn(port, raw, count, total, statuses) for _ in range(conns)))
    return statuses


async def drive_grpc(port: int, total: int, conns: int, rows: list) -> dict:
    import grpc

    from modelport.wire.grpc import grpc_predict_v2_pb2 as pb
    from modelport.wire.grpc import grpc_predict_v2_pb2_grpc as pbg

    req = pb.ModelInferRequest(model_name="iris")
    t = req.inputs.add(name="input-0", datatype="FP32", shape=[len(rows), len(rows[0])])
    t.contents.fp32_contents.extend(v for r in rows for v in r)
    count, statuses = [0], {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pbg.GRPCInferenceServiceStub(channel)

        async def one():
            while count[0] < total:
                count[0] += 1
                try:
                    await stub.ModelInfer(req)
                    code = "OK"
                except grpc.RpcError as exc:
                    code = exc.code().name
                statuses[code] = statuses.get(code, 0) + 1

        await asyncio.gather(*(one() for _ in range(conns)))
    return statuses


async def drive_grpc_stream(port: int, total: int, conns: int, rows: list) -> dict:
    """`conns` ModelStreamInfer streams, each sending its share of `total` requests without waiting
    for answers (the stream's point), then reading them all."""
    import grpc

    from modelport.wire.grpc import grpc_predict_v2_pb2 as pb
    from modelport.wire.grpc import grpc_predict_v2_pb2_grpc as pbg

    req = pb.ModelInferRequest(model_name="iris")
    t = req.inputs.add(name="input-0", datatype="FP32", shape=[len(rows), len(rows[0])])
    t.contents.fp32_contents.extend(v for r in rows for v in r)
    statuses: dict = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pbg.GRPCInferenceServiceStub(channel)

        async def one(k: int):
            async def requests():
                for _ in range(k):
                    yield req

            async for answer in stub.ModelStreamInfer(requests()):
                code = "error" if answer.error_message else "OK"
                statuses[code] = statuses.get(code, 0) + 1

        await asyncio.gather(*(one(total // conns) for _ in range(conns)))
    return statuses


def grpc_request(rows: list, model: str = "iris") -> bytes:
    """One ModelInferRequest (FP32 ``contents`` [rows,4]) in its 5-byte gRPC frame: h2load's body."""
    from modelport.wire.grpc import grpc_predict_v2_pb2 as pb

    req = pb.ModelInferRequest(model_name=model)
    t = req.inputs.add(name="input-0", datatype="FP32", shape=[len(rows), len(rows[0])])
    t.contents.fp32_contents.extend(v for r in rows for v in r)
    message = req.SerializeToString()
    return struct.pack(">BI", 0, len(message)) + message


def h2load(port: int, rows: list, seconds: float, conns: int) -> str:
    """h2load's report of `seconds` of ModelInfer calls (one thread, one stream per connection)."""
    frame = Path(tempfile.mkstemp(suffix=".bin")[1])
    frame.write_bytes(grpc_request(rows))
    url = f"http://127.0.0.1:{port}/inference.GRPCInferenceService/ModelInfer"
    cmd = ["h2load", "-t1", f"-c{conns}", "-m1", f"-D{max(1, int(seconds))}",
           "-H", "content-type: application/grpc", "-H", "te: trailers", "-d", str(frame), url]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    finally:
        frame.unlink()


def measure_h2load(pid: int, port: int, rows: list, seconds: float, conns: int) -> dict:
    """A saturating gRPC load (h2load, one thread, one stream per connection) for `seconds`; CPU ÷ the
    calls h2load completed. h2load sees HTTP/2 statuses only (gRPC errors travel in trailers): the
    caller checks one call with a real client first."""
    h2load(port, rows, 1, conns)  # warm-up
    (u0, s0), t0 = cpu_times(pid), time.perf_counter()
    out = h2load(port, rows, seconds, conns)
    (u1, s1), t1 = cpu_times(pid), time.perf_counter()
    req = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed", out)
    if not req:
        raise SystemExit(f"h2load failed: {out[-800:]}")
    n = int(req.group(1))
    return {"n": n, "cpu_us_per_req": round((u1 - u0 + s1 - s0) / n * 1e6, 1), "sys_us_per_req": round((s1 - s0) / n * 1e6, 1),
            "req_s_wall": round(n / (t1 - t0)), "errors": n - int(req.group(2)) + int(req.group(3)),
            "rss_mib": round(rss_mib(pid), 1)}


def measure_grpc(pid: int, port: int, rows: list, n: int, conns: int, stream: bool = False, h2load: float = 0) -> dict:
    if h2load and not stream:
        statuses = asyncio.run(drive_grpc(port, 1, 1, rows))  # a real call: errors would hide in h2load's trailers
        if statuses != {"OK": 1}:
            raise SystemExit(f"the check call failed: {statuses}")
        return measure_h2load(pid, port, rows, h2load, conns)
    drive = drive_grpc_stream if stream else drive_grpc
    asyncio.run(drive(port, max(200, n // 10), conns, rows))
    (u0, s0), t0 = cpu_times(pid), time.perf_counter()
    statuses = asyncio.run(drive(port, n, conns, rows))
    (u1, s1), t1 = cpu_times(pid), time.perf_counter()
    return {"n": n, "cpu_us_per_req": round((u1 - u0 + s1 - s0) / n * 1e6, 1), "sys_us_per_req": round((s1 - s0) / n * 1e6, 1),
            "req_s_wall": round(n / (t1 - t0)), "statuses": statuses, "rss_mib": round(rss_mib(pid), 1)}


def wrk(port: int, raw: bytes, seconds: float, conns: int, latency: bool = False) -> tuple[str, int, int]:
    """wrk's report of `seconds` of the POST in `raw` (one thread), the requests it completed and the
    errors it counted (non-2xx answers and socket errors); ``latency``: with its percentiles."""
    head, body = raw.split(b"\r\n\r\n", 1)
    path = head.split(b" ")[1].decode()
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = ' + json.dumps(body.decode()) + "\n")
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{max(1, int(seconds))}s", *(["--latency"] if latency else []), "-s", str(script),
           f"http://127.0.0.1:{port}{path}"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    finally:
        script.unlink()
    n = int(out.split(" requests in ")[0].split()[-1])
    bad = 0
    for line in out.splitlines():
        if "Non-2xx" in line or "Socket errors" in line:
            bad += sum(int(x) for x in line.replace(",", " ").split() if x.isdigit())
    return out, n, bad


def measure_wrk(pid: int, port: int, raw: bytes, seconds: float, conns: int) -> dict:
    """A saturating load (wrk, one thread) for `seconds`; CPU ÷ the requests wrk completed."""
    wrk(port, raw, 1, conns)  # warm-up
    (u0, s0), t0 = cpu_times(pid), time.perf_counter()
    _, n, bad = wrk(port, raw, seconds, conns)
    (u1, s1), t1 = cpu_times(pid), time.perf_counter()
    return {"n": n, "cpu_us_per_req": round((u1 - u0 + s1 - s0) / n * 1e6, 1), "sys_us_per_req": round((s1 - s0) / n * 1e6, 1),
            "req_s_wall": round(n / (t1 - t0)), "errors": bad, "rss_mib": round(rss_mib(pid), 1)}


def measure(pid: int, port: int, raw: bytes, n: int, conns: int, wrk: float = 0) -> dict:
    if wrk:
        return measure_wrk(pid, port, raw, wrk, conns)
    asyncio.run(drive(port, raw, max(200, n // 10), conns))  # warm-up
    (u0, s0), t0 = cpu_times(pid), time.perf_counter()
    statuses = asyncio.run(drive(port, raw, n, conns))
    (u1, s1), t1 = cpu_times(pid), time.perf_counter()
    return {"n": n, "cpu_us_per_req": round((u1 - u0 + s1 - s0) / n * 1e6, 1), "sys_us_per_req": round((s1 - s0) / n * 1e6, 1),
            "req_s_wall": round(n / (t1 - t0)),
            "statuses": statuses, "rss_mib": round(rss_mib(pid), 1)}


@contextlib.contextmanager
def pyspy(pid: int, out: str):
    """A py-spy profile (collapsed stacks, GIL holder only) of what runs inside the block."""
    spy = subprocess.Popen(["py-spy", "record", "-p", str(pid), "-f", "raw", "-r", "500", "--nonblocking", "--gil", "-o", out],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)



def stop(proc: subprocess.Popen) -> None:
    """End a server started in its own process group: SIGTERM, then SIGKILL after 10 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", choices=["floor", "raw-floor", "lean-floor", "grpc-floor", "grpc-canned", "grpc-floor-sync", "grpc-canned-sync",
                                             "grpc-floor-generic", "grpc-canned-generic", "grpc-floor-grpclib",
                                             "grpc-canned-grpclib", "modelport"], default="modelport")
    ap.add_argument("--model-dir")
    ap.add_argument("--model", default="iris")
    ap.add_argument("--header", action="append", default=[], help="an extra request header, 'Name: value' (REST; "
                    "repeatable), e.g. the API key of a server given api_keys through MODELPORT_API_KEYS")
    ap.add_argument("--proto", default="v2,v1")
    ap.add_argument("--rows", type=int, default=1)
    ap.add_argument("-n", type=int, default=5000)
    ap.add_argument("-c", "--conns", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3, help="measured runs per protocol (the minimum is reported)")
    ap.add_argument("--wrk", type=float, default=0, help="saturate with wrk for this many seconds instead of N requests")
    ap.add_argument("--h2load", type=float, default=0, help="gRPC: saturate with h2load for this many seconds instead "
                    "of N calls from a grpc.aio client")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--callgrind", help="run the server under valgrind's callgrind, instrumenting only the measured "
                    "requests; writes this file and reports instructions per request (deterministic)")
    ap.add_argument("--pyspy", help="record a py-spy profile of one extra run into this file (.txt: collapsed)")
    args = ap.parse_args()
    rows = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]] * 11
    rows = rows[: args.rows]
    prefix = []
    if args.callgrind:
        prefix = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={args.callgrind}"]
    proc, http, grpc_port, tmp = start(args.server, args.model_dir, args.python, prefix)
    try:
        if args.callgrind:
            if args.proto == "grpc":
                run_n = lambda k: asyncio.run(drive_grpc(grpc_port, k, args.conns, rows))  # noqa: E731
            else:
                raw = request_bytes(args.proto, args.model, rows, http, args.header)
                run_n = lambda k: asyncio.run(drive(http, raw, k, args.conns))  # noqa: E731
            run_n(300)  # warm-up, uninstrumented
            subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True)
            statuses = run_n(args.n)
            subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True, capture_output=True)
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
            dumps = sorted(Path(args.callgrind).parent.glob(Path(args.callgrind).name + "*"))
            total = 0
            for d in dumps:
                for line in d.read_text(errors="replace").splitlines():
                    if line.startswith(("summary:", "totals:")):
                        total = max(total, int(line.split()[1]))
            print(json.dumps({"server": args.server, "proto": args.proto, "n": args.n, "statuses": statuses,
                              "instructions_per_req": round(total / args.n), "files": [str(d) for d in dumps]}), flush=True)
            return
        for proto in args.proto.split(","):
            if proto in ("grpc", "grpc-stream"):
                stream = proto == "grpc-stream"
                runs = [measure_grpc(proc.pid, grpc_port, rows, args.n, args.conns, stream, args.h2load)
                        for _ in range(args.repeat)]
                print(json.dumps({"server": args.server, "model_dir": args.model_dir, "proto": proto, "rows": args.rows,
                                  "conns": args.conns, **min(runs, key=lambda r: r["cpu_us_per_req"]),
                                  "all_cpu_us": [r["cpu_us_per_req"] for r in runs]}), flush=True)
                if args.pyspy:
                    with pyspy(proc.pid, f"{args.pyspy}.{proto}.txt"):
                        measure_grpc(proc.pid, grpc_port, rows, args.n, args.conns, stream, args.h2load)
                continue
            raw = request_bytes(proto, args.model, rows, http, args.header)
            runs = [measure(proc.pid, http, raw, args.n, args.conns, args.wrk) for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r["cpu_us_per_req"])
            print(json.dumps({"server": args.server, "model_dir": args.model_dir, "proto": proto, "rows": args.rows,
                              "conns": args.conns, **best, "all_cpu_us": [r["cpu_us_per_req"] for r in runs]}), flush=True)
            if args.pyspy:
                with pyspy(proc.pid, f"{args.pyspy}.{proto}.txt"):
                    measure(proc.pid, http, raw, args.n, args.conns, args.wrk)
    finally:
        stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

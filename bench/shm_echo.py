"""Tensors through Triton's system shared memory (modelport/shm.py) against memcpy-bound echo floors.

    BENCH_SCENARIO_CHECKOUT=1 python bench/shm_echo.py --out bench/results/<stamp>-shm-echo.md
    BENCH_SCENARIO_CHECKOUT=1 python bench/shm_echo.py --quick        # a smoke run

A [64,1024] and a [1,3,224,224] FP32 echo (bench/peers/modelport_echo.py), one connection, per case:

- ``memcpy floor``: no server. Each round trip is what a shared-memory echo cannot avoid: the client
  copies the tensor into its input region, the "server" copies the input region into the output region
  (in this process, numpy), the client looks at the output region;
- ``HTTP echo floor``: bench/echo_floor.py http in its own process, the issue's memcpy-bound echo:
  Content-Length bytes in, the same bytes back over loopback TCP;
- ``gRPC echo floor``: bench/echo_floor.py grpc in its own process, the same echo over grpc.aio: a
  ModelInferRequest with the tensor as raw contents in, its bytes answered as the response (no protobuf
  parse). The memcpy-bound echo a gRPC door can be held to: a gRPC shm echo is measured against it too
  (``% of gRPC echo floor``), since any gRPC call costs what grpc.aio costs before a byte is copied;
- ``modelport REST shm`` / ``modelport gRPC shm``: ``modelport serve --system-shared-memory local``;
  per request the client copies the tensor into the input region and sends a small request naming
  the regions (as tritonclient's ``set_shared_memory`` builds it); the answer carries no data, the
  output is in the output region;
- ``modelport REST binary`` / ``modelport gRPC raw``: the same server, the tensor in the request and the
  answer (context: what shared memory saves);
- ``modelport gRPC [1,4]`` and ``gRPC floor (canned)``: what any gRPC call costs, whatever its tensor. The
  first is a [1,4] FP32 raw ModelInfer to the same echo model (modelport's gRPC path without shared
  memory); the second bench/grpc_floor.py --generic, bare grpc.aio answering a canned ModelInfer in its own
  process (grpc.aio's own cost per call: at 1 connection every call wakes its threads several times). A
  gRPC shm echo costs about the first plus the one copy into the output region; what separates it from
  REST shm is about the second (their MB/s columns count 16 and 0 tensor bytes: read their CPU).

MB/s counts the tensor's bytes in and out (2 × its size per request); ``server CPU µs/req`` is the
server's process tree (utime+stime) over the timed requests ÷ requests (the memcpy floor: this
process's CPU). Every case's answer is checked once against the input, byte for byte, outside the
timing. Rounds alternate the cases; medians are shown. Measure on a quiet machine: on a shared one
quote the CPU column, not MB/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import mmap
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from scenarios import (  # noqa: E402
    GRPC_OPTIONS, SHAPES, Conn, Server, _drive_grpc, _drive_http, _python, _v2_bodies, free_port, http_once,
    model_folder, pct, post,
)

CASES = ["memcpy floor", "HTTP echo floor", "gRPC echo floor", "modelport REST shm", "modelport gRPC shm", "modelport REST binary",
         "modelport gRPC raw", "modelport gRPC [1,4]", "gRPC floor (canned)"]
TINY = [1, 4]  # the per-call controls' tensor
# The gRPC cases that move the tensor, shown against the gRPC echo floor too.
GRPC_TENSOR_CASES = ("gRPC echo floor", "modelport gRPC shm", "modelport gRPC raw")


class Region:
    """A shared-memory object under /dev/shm, mapped here as the client maps it (tritonclient's way)."""

    def __init__(self, size: int):
        self.key = f"/bench_shm_{uuid.uuid4().hex[:10]}"
        self.path = "/dev/shm/" + self.key[1:]
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
            self.map = mmap.mmap(fd, size)
        finally:
            os.close(fd)

    def array(self, shape: list[int]) -> np.ndarray:
        return np.ndarray(shape, np.float32, buffer=self.map)

    def close(self) -> None:
        os.unlink(self.path)


# -- the cases -----------------------------------------------------------------------------------------
def memcpy_floor(arr: np.ndarray, count: int) -> dict:
    size = arr.nbytes
    src, dst = Region(size), Region(size)
    try:
        a, b = src.array(list(arr.shape)), dst.array(list(arr.shape))
        lat = []
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(count):
            t = time.perf_counter()
            np.copyto(a, arr)  # the client writes its input
            np.copyto(b, a)  # the echo: input region -> output region
            lat.append(time.perf_counter() - t)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        errors = 0 if np.array_equal(b, arr) else 1
        del a, b
        src.map.close()
        dst.map.close()
    finally:
        src.close()
        dst.close()
    return _result(size, count, wall, lat, errors, cpu)


def _result(size: int, count: int, wall: float, lat: list[float], errors: int, cpu: float) -> dict:
    return {"mbs": size * 2 * count / wall / 1e6, "p50": pct(lat, 50) * 1e3, "p99": pct(lat, 99) * 1e3,
            "errors": errors, "cpu_us": cpu / count * 1e6}


async def _register(port: int, name: str, region: Region, size: int) -> None:
    body = json.dumps({"key": region.key, "offset": 0, "byte_size": size}).encode()
    status, _, answer = await http_once(port, post(f"/v2/systemsharedmemory/region/{name}/register", body))
    if status != 200:
        raise RuntimeError(f"register {name}: HTTP {status} {answer[:200]!r}")


def _shm_body(shape: list[int], size: int) -> bytes:
    doc = {"inputs": [{"name": "input-0", "shape": shape, "datatype": "FP32",
                       "parameters": {"shared_memory_region": "in", "shared_memory_byte_size": size}}],
           "outputs": [{"name": "output-0", "parameters": {"shared_memory_region": "out", "shared_memory_byte_size": size}}]}
    return post("/v2/models/echo/infer", json.dumps(doc).encode())


def _shm_grpc_request(shape: list[int], size: int):
    from modelport.wire.grpc import grpc_predict_v2_pb2 as pb

    req = pb.ModelInferRequest(model_name="echo")
    t = req.inputs.add(name="input-0", datatype="FP32", shape=shape)
    t.parameters["shared_memory_region"].string_param = "in"
    t.parameters["shared_memory_byte_size"].int64_param = size
    out = req.outputs.add(name="output-0")
    out.parameters["shared_memory_region"].string_param = "out"
    out.parameters["shared_memory_byte_size"].int64_param = size
    return req


async def shm_case(server: Server, kind: str, arr: np.ndarray, inp: np.ndarray, out: np.ndarray, count: int) -> dict:
    """``count`` shared-memory echoes: copy the tensor into the input region, send the small request."""
    shape, size = list(arr.shape), arr.nbytes
    lat, errors = [], 0
    if kind == "rest":
        body = _shm_body(shape, size)
        conn = await Conn.open(server.http)

        async def once() -> bool:
            status, _, _ = await conn.request(body)
            return status == 200
    else:
        import grpc

        from modelport.wire.grpc import grpc_predict_v2_pb2 as pb

        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc}", options=GRPC_OPTIONS)
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer", request_serializer=None,
                                   response_deserializer=pb.ModelInferResponse.FromString)
        raw = _shm_grpc_request(shape, size).SerializeToString()

        async def once() -> bool:
            try:
                await call(raw)
                return True
            except grpc.RpcError:
                return False
    try:
        for _ in range(max(3, count // 10)):  # warm-up
            np.copyto(inp, arr)
            await once()
        out[...] = 0
        np.copyto(inp, arr)
        errors += 0 if await once() and np.array_equal(out, arr) else 1  # checked once, outside the timing
        c0, t0 = server.cpu(), time.perf_counter()
        for _ in range(count):
            t = time.perf_counter()
            np.copyto(inp, arr)
            errors += 0 if await once() else 1
            lat.append(time.perf_counter() - t)
        wall, cpu = time.perf_counter() - t0, server.cpu() - c0
    finally:
        if kind == "rest":
            conn.close()
        else:
            await channel.close()
    return _result(size, count, wall, lat, errors, cpu)


async def tiny_grpc_case(server: Server, port: int, count: int, expect: int) -> dict:
    """``count`` ModelInfer calls with a [1,4] FP32 tensor: the cost of a gRPC call itself. ``expect``: the
    raw answer's size (16 from the echo, 0 from the canned floor, which answers typed contents)."""
    raw = np.arange(4, dtype=np.float32).reshape(TINY).tobytes()
    _, first_bad = await _drive_grpc(port, TINY, raw, max(3, count // 10), 1, expect)  # warm-up, answers checked
    c0, t0 = server.cpu(), time.perf_counter()
    lat, errors = await _drive_grpc(port, TINY, raw, count, 1, expect)
    return _result(len(raw), count, time.perf_counter() - t0, lat, errors + first_bad, server.cpu() - c0)


async def wire_case(server: Server, kind: str, port: int, arr: np.ndarray, body: bytes | None, count: int) -> dict:
    """REST binary / gRPC raw / the HTTP echo floor: the tensor in the request and in the answer."""
    raw, size = arr.tobytes(), arr.nbytes
    if kind == "grpc":
        await _drive_grpc(port, list(arr.shape), raw, max(3, count // 10), 1)
        c0, t0 = server.cpu(), time.perf_counter()
        lat, errors = await _drive_grpc(port, list(arr.shape), raw, count, 1)
    else:
        check = lambda h, b: len(b) >= size  # noqa: E731 - sizes only; the bytes are checked once below
        status, _, answer = await http_once(port, body)
        first_ok = status == 200 and answer.endswith(raw)
        await _drive_http(port, body, max(3, count // 10), 1, check)
        c0, t0 = server.cpu(), time.perf_counter()
        lat, errors = await _drive_http(port, body, count, 1, check)
        errors += 0 if first_ok else 1
    return _result(size, count, time.perf_counter() - t0, lat, errors, server.cpu() - c0)


# -- the run -------------------------------------------------------------------------------------------
async def run(args) -> str:
    work = Path(tempfile.mkdtemp(prefix="bench-shm-"))
    python, env = _python()
    model_folder(work / "models", "echo", {"implementation": "modelport_echo.EchoModel"})
    modelport = Server(work / "models", ["--system-shared-memory", "local", "--grpc-max-message-size", str(256 << 20)])
    http_port = free_port()
    (work / "floor").mkdir()  # its own folder: its own server.log
    floor = Server(work / "floor" / "echo", argv=[python, str(BENCH / "echo_floor.py"), "http", str(http_port)], env=env,
                   ports=(http_port, free_port()))
    (work / "grpc-echo").mkdir()
    echo_http, echo_grpc = free_port(), free_port()
    grpc_echo = Server(work / "grpc-echo" / "echo", argv=[python, str(BENCH / "echo_floor.py"), "grpc", str(echo_grpc)], env=env,
                       ports=(echo_http, echo_grpc))
    (work / "grpc-floor").mkdir()
    grpc_http, grpc_port = free_port(), free_port()
    grpc_floor = Server(work / "grpc-floor" / "echo", argv=[python, str(BENCH / "grpc_floor.py"), str(grpc_port), "--generic",
                        "--http", str(grpc_http)], env=env, ports=(grpc_http, grpc_port))
    regions: list[Region] = []
    results: dict = {}
    try:
        await modelport.ready()
        await floor.ready()
        await grpc_floor.ready()
        await _grpc_ready(grpc_echo.grpc)
        for label, shape in SHAPES.items():
            bodies = _v2_bodies(shape)
            arr = bodies["_array"]
            inp, out = Region(arr.nbytes), Region(arr.nbytes)
            regions += [inp, out]
            await _http_ok(modelport.http, post("/v2/systemsharedmemory/unregister", b""))
            await _register(modelport.http, "in", inp, arr.nbytes)
            await _register(modelport.http, "out", out, arr.nbytes)
            in_view, out_view = inp.array(shape), out.array(shape)
            echo_body = post("/echo", arr.tobytes(), content_type="application/octet-stream")
            for r in range(args.rounds):
                for case in CASES:
                    n = args.requests
                    if case == "memcpy floor":
                        res = memcpy_floor(arr, n)
                    elif case == "HTTP echo floor":
                        res = await wire_case(floor, "http", floor.http, arr, echo_body, n)
                    elif case == "gRPC echo floor":
                        res = await wire_case(grpc_echo, "grpc", grpc_echo.grpc, arr, None, n)
                    elif case.endswith("shm"):
                        res = await shm_case(modelport, "rest" if "REST" in case else "grpc", arr, in_view, out_view, n)
                    elif case == "modelport REST binary":
                        res = await wire_case(modelport, "http", modelport.http, arr, bodies["rest-binary"], n)
                    elif case == "modelport gRPC [1,4]":
                        res = await tiny_grpc_case(modelport, modelport.grpc, n, 16)
                    elif case == "gRPC floor (canned)":
                        res = await tiny_grpc_case(grpc_floor, grpc_floor.grpc, n, 0)
                    elif case == "modelport gRPC raw":
                        res = await wire_case(modelport, "grpc", modelport.grpc, arr, None, n)
                    results.setdefault((label, case), []).append(res)
                    print(f"{label} {case} round {r + 1}: {res['mbs']:,.0f} MB/s, server CPU {res['cpu_us']:,.0f} µs/req, "
                          f"errors {res['errors']}", file=sys.stderr, flush=True)
            del in_view, out_view
    finally:
        modelport.stop()
        floor.stop()
        grpc_floor.stop()
        grpc_echo.stop()
        for region in regions:
            region.close()
    return report(results, args)


async def _grpc_ready(port: int, timeout: float = 60) -> None:
    """A server with a gRPC port only (the gRPC echo floor): ready once a channel to it connects."""
    import grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout)


async def _http_ok(port: int, raw: bytes) -> None:
    status, _, answer = await http_once(port, raw)
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {answer[:200]!r}")


def report(results: dict, args) -> str:
    lines = [f"# System shared memory vs memcpy-bound echoes ({time.strftime('%Y-%m-%d %H:%M')})", "",
             f"{args.requests} requests per case and round, 1 connection, {args.rounds} round(s), medians. "
             "MB/s: tensor bytes in + out. CPU: the server's process tree per request (memcpy floor: this process).",
             "", "| shape | case | MB/s | % of HTTP echo floor | % of gRPC echo floor | % of memcpy floor | p50 ms | "
             "server CPU µs/req | errors |",
             "|---|---|--:|--:|--:|--:|--:|--:|--:|"]
    for label in SHAPES:
        med = {case: {k: statistics.median(r[k] for r in results[(label, case)]) for k in ("mbs", "p50", "cpu_us")}
               for case in CASES if (label, case) in results}
        errors = {case: sum(r["errors"] for r in results[(label, case)]) for case in med}
        for case, m in med.items():
            floor_http, floor_copy = med["HTTP echo floor"]["mbs"], med["memcpy floor"]["mbs"]
            floor_grpc = med.get("gRPC echo floor", {}).get("mbs")
            of_grpc = f"{100 * m['mbs'] / floor_grpc:.0f}%" if floor_grpc and case in GRPC_TENSOR_CASES else ""
            lines.append(f"| {label} | {case} | {m['mbs']:,.0f} | {100 * m['mbs'] / floor_http:.0f}% | {of_grpc} | "
                         f"{100 * m['mbs'] / floor_copy:.0f}% | {m['p50']:.3f} | {m['cpu_us']:,.0f} | {errors[case]} |")
    lines += ["", "Target (issue 24): modelport's shared-memory echo at >= 80% of a memcpy-bound echo: the HTTP echo "
              "floor for REST, and for gRPC both the HTTP echo floor and the gRPC echo floor (the same echo over "
              "grpc.aio). The memcpy floor is the copies alone, with no request at all."]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=500, help="timed requests per case and round (default 500)")
    p.add_argument("--rounds", type=int, default=3, help="rounds, alternating the cases (default 3)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 20 requests, 1 round")
    p.add_argument("--out", help="write the Markdown report here too")
    args = p.parse_args()
    if args.quick:
        args.requests, args.rounds = 20, 1
    text = asyncio.run(run(args))
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()

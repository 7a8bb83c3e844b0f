"""The load itself: requests built once, sent by lean clients, in closed or open loop.

The HTTP client is a bare asyncio protocol over keep-alive connections: the request bytes are built
once and written as they are, and a response is read only as far as its status and length. That keeps
the client's own cost per request far below the server's, so the numbers are the server's.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

import numpy as np

from ..types import InferInput, InferRequest
from ..wire import v2_json

PROTOCOLS = ("rest-v2", "rest-v2-binary", "rest-v1", "grpc")


@dataclass
class Recorder:
    """Latencies (ns) and errors of the requests *started* inside the measurement window [start, end].

    Requests started in the warm-up are not counted even if they finish inside the window, and requests
    started inside it are counted even if they finish after it, so the count over the window's length is the
    rate the load generator kept up (in an open loop: the rate asked for, unless requests failed).
    """

    start: int | None = None  # perf_counter_ns when measuring began; None during the warm-up
    end: float = float("inf")
    latencies: list = field(default_factory=list)
    errors: dict = field(default_factory=dict)
    sent: int = 0
    done: int = 0  # every finished request, warm-up included (for the progress display)

    def record(self, started: int, code: str | None) -> None:
        self.done += 1
        if self.start is None or not self.start <= started <= self.end:
            return
        if code is None:
            self.latencies.append(time.perf_counter_ns() - started)
        else:
            self.errors[code] = self.errors.get(code, 0) + 1


# -- requests -------------------------------------------------------------------------------------
def random_tensor(spec: dict, batch: int, rng: np.random.Generator) -> InferInput:
    """Random data of a declared input's shape; variable dimensions (-1) become ``batch`` (first) or 1."""
    shape = [(batch if i == 0 else 1) if (d is None or d < 0) else int(d) for i, d in enumerate(spec.get("shape") or [-1])]
    datatype = spec.get("datatype", "FP32")
    if datatype == "BYTES":
        words = np.array(["good", "bad", "fast", "slow", "fine", "model"], dtype=object)
        array = np.array([" ".join(rng.choice(words, 4)) for _ in range(int(np.prod(shape)))], dtype=object).reshape(shape)
    elif datatype == "BOOL":
        array = rng.random(shape) < 0.5
    elif datatype.startswith(("INT", "UINT")):
        array = rng.integers(0, 10, size=shape).astype(datatype.lower())
    else:
        array = rng.random(shape).astype({"FP16": np.float16, "FP32": np.float32, "FP64": np.float64}.get(datatype, np.float32))
    tensor = InferInput(spec["name"], shape, datatype)
    tensor.set_data_from_numpy(array, binary_data=False)
    return tensor


def request_from_metadata(model: str, metadata: dict, batch: int = 1, seed: int = 0) -> InferRequest:
    inputs = metadata.get("inputs") or []
    if not inputs:
        raise ValueError(f"Model {model} declares no inputs; give a request with --input-file")
    rng = np.random.default_rng(seed)
    return InferRequest(model, [random_tensor(spec, batch, rng) for spec in inputs])


def request_from_file(model: str, path: str | Path) -> InferRequest | dict:
    """A V2 body (``inputs``) as an InferRequest, or a V1 body (``instances``) as the dict."""
    doc = json.loads(Path(path).read_text())
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: the request must be a JSON object")
    if "inputs" in doc:
        return v2_json.request_from_dict(doc, model)
    if "instances" in doc:
        return doc
    raise ValueError(f"{path}: a V2 body needs \"inputs\", a V1 body \"instances\"")


def v1_body(request: InferRequest | dict) -> dict:
    if isinstance(request, dict):
        return request
    return {"instances": request.inputs[0].as_numpy().tolist()}


def http_request_bytes(url: str, model: str, protocol: str, request: InferRequest | dict, version: str | None = None) -> bytes:
    """The whole HTTP/1.1 request, built once."""
    parts = urlsplit(url)
    host = parts.netloc
    headers = [f"Host: {host}", "Connection: keep-alive"]
    if protocol == "rest-v1":
        path = f"/v1/models/{model}:predict"
        body = v2_json.dumps(v1_body(request))
        headers.append("Content-Type: application/json")
    else:
        if isinstance(request, dict):
            raise ValueError("a V1 request file cannot be sent over V2; use --protocol rest-v1")
        path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
        binary = protocol == "rest-v2-binary"
        body, json_length = v2_json.encode_request(request, binary_inputs=binary, binary_outputs=binary)
        if json_length is not None:
            headers.append(f"Inference-Header-Content-Length: {json_length}")
            headers.append("Content-Type: application/octet-stream")
        else:
            headers.append("Content-Type: application/json")
    headers.append(f"Content-Length: {len(body)}")
    head = f"POST {parts.path.rstrip('/')}{path} HTTP/1.1\r\n" + "\r\n".join(headers) + "\r\n\r\n"
    return head.encode("latin-1") + body


# -- HTTP ----------------------------------------------------------------------------------------
class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.buffer:
            self.buffer += data
            data = bytes(self.buffer)
        if self.waiter is None:
            self.buffer[:] = data
            return
        end = data.find(b"\r\n\r\n")
        if end < 0:
            self.buffer[:] = data
            return
        # Servers mostly send lower-case names (uvicorn does); look those up without copying the head.
        at = data.find(b"\r\ncontent-length:", 0, end)
        head = data
        if at < 0:
            head = data[:end].lower()
            at = head.find(b"\r\ncontent-length:")
        length = 0
        if at >= 0:
            line_end = head.find(b"\r\n", at + 2)
            length = int(head[at + 17:line_end if 0 < line_end < end else end])
        total = end + 4 + length
        if len(data) < total:
            self.buffer[:] = data
            return
        self.buffer[:] = data[total:]
        waiter, self.waiter = self.waiter, None
        if data.find(b"onnection: close", 0, end) >= 0:
            self.closed = True
        waiter.set_result(int(data[9:12]))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))
        self.waiter = None

    def send(self, data: bytes) -> asyncio.Future:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter


class HttpSender:
    """``await sender()`` sends the prepared request on a free connection; returns None or an error code."""

    def __init__(self, url: str, payload: bytes):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.payload = payload
        self.idle: list[_Connection] = []
        self.opened: list[_Connection] = []

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Connection, self.host, self.port)
        self.opened.append(conn)
        return conn

    async def __call__(self) -> str | None:
        conn = self.idle.pop() if self.idle else await self._connect()
        try:
            status = await conn.send(self.payload)
        except ConnectionError:
            return "connection"
        if not conn.closed:
            self.idle.append(conn)
        else:
            conn.transport.close()
        return None if status == 200 else str(status)

    async def aclose(self) -> None:
        for conn in self.opened:
            if conn.transport is not None:
                conn.transport.close()


# -- gRPC ----------------------------------------------------------------------------------------
class GrpcSender:
    def __init__(self, target: str, request: InferRequest, channels: int = 1):
        import grpc

        from ..wire.grpc import convert
        from ..wire.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

        if isinstance(request, dict):
            raise ValueError("a V1 request file cannot be sent over gRPC")
        self._grpc = grpc
        self.message = convert.request_to_proto(request, raw=True)
        options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
        self.channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(max(1, channels))]
        self.stubs = [pb_grpc.GRPCInferenceServiceStub(c).ModelInfer for c in self.channels]
        self._next = 0

    async def __call__(self) -> str | None:
        stub = self.stubs[self._next % len(self.stubs)]
        self._next += 1
        try:
            await stub(self.message)
        except self._grpc.aio.AioRpcError as exc:
            return exc.code().name
        return None

    async def aclose(self) -> None:
        for channel in self.channels:
            await channel.close()


# -- loops ---------------------------------------------------------------------------------------
Sender = Callable[[], Awaitable["str | None"]]


async def closed_loop(send: Sender, recorder: Recorder, concurrency: int, stop: Callable[[], bool]) -> None:
    """``concurrency`` workers, each sending its next request when the last one is answered."""

    async def worker() -> None:
        clock = time.perf_counter_ns
        while not stop():
            started = clock()
            recorder.sent += 1
            try:
                code = await send()
            except Exception as exc:  # noqa: BLE001 - counted, and the run goes on
                code = type(exc).__name__
            recorder.record(started, code)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def open_loop(send: Sender, recorder: Recorder, rate: float, stop: Callable[[], bool], max_outstanding: int = 4096) -> None:
    """Requests sent on a fixed schedule of ``rate`` per second, whether or not earlier ones were answered
    (latency then includes the time a request waits for a free connection, as a user's would)."""
    loop = asyncio.get_running_loop()
    interval = 1e9 / rate
    outstanding: set[asyncio.Task] = set()

    async def one(scheduled: int) -> None:
        try:
            code = await send()
        except Exception as exc:  # noqa: BLE001
            code = type(exc).__name__
        recorder.record(scheduled, code)

    start = time.perf_counter_ns()
    n = 0
    while not stop():
        due = start + int(n * interval)
        now = time.perf_counter_ns()
        if due > now:
            await asyncio.sleep((due - now) / 1e9)
            continue
        if len(outstanding) >= max_outstanding:
            recorder.record(due, "client-backlog")
        else:
            task = loop.create_task(one(due))  # latency counted from when it was due
            outstanding.add(task)
            task.add_done_callback(outstanding.discard)
            recorder.sent += 1
        n += 1
    if outstanding:
        await asyncio.gather(*outstanding)

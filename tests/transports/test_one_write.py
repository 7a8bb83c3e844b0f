"""A whole HTTP answer goes out in one write (transports/rest/http_connection.py, OneWriteCycle).

uvicorn writes a response's head and its body separately: two send(2) calls per answer. The connection's
cycle holds the head back until the body and writes both at once; a large body is written after the head
as it is (never copied into one buffer), and a streamed answer's head is not held back. These tests count
the writes on the real connection's transport, on a real server and socket.
"""

from __future__ import annotations

import asyncio
import json

import numpy as np

from modelport.transports.rest.http_connection import JOIN_BODY

from ..fixture_models import EchoModel, SumModel

SMALL = json.dumps({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}).encode()


class CountingTransport:
    """The connection's own transport, counting what the server writes to it."""

    def __init__(self, transport):
        self._transport = transport
        self.writes: list[int] = []

    def write(self, data) -> None:
        self.writes.append(len(data))
        self._transport.write(data)

    def __getattr__(self, name):
        return getattr(self._transport, name)


async def _connect(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
    writer.write(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")  # the connection is known to the server once served
    await _response(reader)
    (conn,) = server._guard.connections
    counting = conn.transport = CountingTransport(conn.transport)
    return reader, writer, counting


async def _response(reader) -> tuple[bytes, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    return head, await asyncio.wait_for(reader.readexactly(length), 20)


def _post(path: str, body: bytes) -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        path.encode(), len(body), body)


async def test_an_answer_is_one_write_on_a_kept_alive_connection(serve):
    server, _ = await serve([SumModel("sum")])
    reader, writer, counting = await _connect(server)
    try:
        for _ in range(3):
            counting.writes.clear()
            writer.write(_post("/v2/models/sum/infer", SMALL))
            head, body = await _response(reader)
            assert head.startswith(b"HTTP/1.1 200 "), head
            assert json.loads(body)["outputs"][0]["data"] == [3.0]
            assert counting.writes == [len(head) + len(body)]
        for path, request, status in (("/v2/models/nope/infer", SMALL, b"404"), ("/v2/models/sum/infer", b"{bad", b"400")):
            counting.writes.clear()  # error answers too: whole, with their message, and the connection serves on
            writer.write(_post(path, request))
            head, body = await _response(reader)
            assert head.startswith(b"HTTP/1.1 " + status + b" ") and counting.writes == [len(head) + len(body)]
            assert json.loads(body)["error"]
        counting.writes.clear()
        writer.write(_post("/v2/models/sum/infer", SMALL))
        head, body = await _response(reader)
        assert head.startswith(b"HTTP/1.1 200 ") and counting.writes == [len(head) + len(body)]
    finally:
        writer.close()


async def test_a_large_body_follows_its_head_uncopied(serve):
    server, _ = await serve([EchoModel()])
    reader, writer, counting = await _connect(server)
    data = np.arange(JOIN_BODY // 2, dtype=np.float32)  # JSON text well over JOIN_BODY
    request = json.dumps({"inputs": [{"name": "x", "shape": [1, data.size], "datatype": "FP32", "data": data.tolist()}]}).encode()
    try:
        writer.write(_post("/v2/models/echo/infer", request))
        head, body = await _response(reader)
        assert head.startswith(b"HTTP/1.1 200 "), head
        assert np.array_equal(np.asarray(json.loads(body)["outputs"][0]["data"], dtype=np.float32), data)
        assert len(body) > JOIN_BODY and counting.writes == [len(head), len(body)]
        counting.writes.clear()  # and the connection serves on
        writer.write(_post("/v2/models/echo/infer", SMALL))
        head, body = await _response(reader)
        assert head.startswith(b"HTTP/1.1 200 ") and counting.writes == [len(head) + len(body)]
    finally:
        writer.close()

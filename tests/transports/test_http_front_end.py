"""The HTTP/1.1 front end's lean path (transports/rest/http_connection.py: GuardedProtocol and Cycle).

The connection does uvicorn's per-request work itself, in fewer steps: it builds the scope, makes the
cycle, hands a whole body over and writes a whole answer at once. These tests hold it to uvicorn's
behaviour on a real server and socket, for the requests that leave the common path: other URL forms,
HTTP/1.0, HEAD, ``Expect: 100-continue``, pipelining, a body in several packets, a WebSocket upgrade and
malformed HTTP (a JSON 400 naming what the parser found, where uvicorn answers plain text).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
from types import SimpleNamespace

import pytest
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from modelport.transports.rest.http_connection import Cycle

from ..fixture_models import SumModel

ROW = json.dumps({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}).encode()


@contextlib.asynccontextmanager
async def _connection(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
    try:
        yield reader, writer
    finally:
        writer.close()


async def _exchange(server, raw: bytes, answers: int = 1, head_only: bool = False) -> list[tuple[bytes, bytes]]:
    async with _connection(server) as (reader, writer):
        writer.write(raw)
        return [await _answer(reader, head_only) for _ in range(answers)]


async def _answer(reader: asyncio.StreamReader, head_only: bool = False) -> tuple[bytes, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    if head_only:
        return head, b""
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    return head, await asyncio.wait_for(reader.readexactly(length), 20)


def _infer(body: bytes = ROW, path: bytes = b"/v2/models/sum/infer", extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
        path, len(body), extra, body)


def test_a_cycle_has_every_attribute_uvicorns_constructor_sets():
    """Cycle.start sets the attributes itself (not through uvicorn's constructor): a uvicorn that adds one
    fails here, not in a request."""
    protocol = SimpleNamespace(transport=object(), flow=object(), logger=None, access_logger=None, access_log=False,
                               server_state=SimpleNamespace(default_headers=[]), on_response_complete=lambda: None,
                               expect_100_continue=False)
    ours = Cycle.start(protocol, {}, True)
    theirs = RequestResponseCycle(scope={}, transport=protocol.transport, flow=protocol.flow, logger=None, access_logger=None,
                                  access_log=False, default_headers=[], message_event=ours.message_event,
                                  expect_100_continue=False, keep_alive=True, on_response=protocol.on_response_complete)
    assert set(vars(ours)) == set(vars(theirs))
    assert {k: v for k, v in vars(ours).items() if k != "body"} == {k: v for k, v in vars(theirs).items() if k != "body"}
    assert not ours.body and not theirs.body


class _Recording:
    def __init__(self):
        self.written = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return False


DATE = (b"date", b"Mon, 07 Dec 2026 22:00:00 GMT")


@pytest.mark.parametrize("defaults", [
    [DATE, (b"server", b"uvicorn")],  # uvicorn's own: one checked block
    [],
    [(b"X-Custom", b"A b"), DATE],  # config.headers: lower-cased names, values as given
    [DATE, (b"Connection", b"close")],  # a framing header among them: seen by the loop, as by uvicorn's
    [(b"X-Custom", b"a"), (b"transfer-encoding", b"chunked")],
])
async def test_the_head_is_uvicorns_with_its_default_headers(defaults):
    """The head (the default headers rendered once per list) is byte for byte what uvicorn writes, with
    the same framing decided; a header its checks refuse is refused on every answer."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"2"), (b"x-request-id", b"abc"),
               (b"x-tab", b"a\tb")]  # a tab is allowed in a value
    for _ in range(2):  # the second answer takes the rendered block
        transport = _Recording()
        theirs = RequestResponseCycle(scope={"method": "POST"}, transport=transport, flow=SimpleNamespace(write_paused=False),
                                      logger=None, access_logger=None, access_log=False, default_headers=defaults,
                                      message_event=asyncio.Event(), expect_100_continue=False, keep_alive=True,
                                      on_response=lambda: None)
        await theirs.send({"type": "http.response.start", "status": 200, "headers": headers})
        protocol = SimpleNamespace(transport=_Recording(), flow=None, logger=None, access_logger=None, access_log=False,
                                   server_state=SimpleNamespace(default_headers=defaults),
                                   on_response_complete=lambda: None, expect_100_continue=False)
        ours = Cycle.start(protocol, {"method": "POST"}, True)
        assert ours._build_head(200, headers) == b"".join(transport.written)
        framing = ("keep_alive", "chunked_encoding", "expected_content_length")
        assert [getattr(ours, k) for k in framing] == [getattr(theirs, k) for k in framing]
    for bad in ([(b"x-bad", b"a\nb")], [(b"bad name", b"a")], [(b"x(y", b"a")], [(b"x", b"a\x7f")], [(b"x", b"a\x00")]):
        for _ in range(2):
            ours = Cycle.start(SimpleNamespace(**{**vars(protocol), "server_state": SimpleNamespace(default_headers=bad)}),
                               {"method": "POST"}, True)
            with pytest.raises(RuntimeError, match="Invalid HTTP header"):
                ours._build_head(200, headers)


async def test_url_forms_reach_the_same_door(serve):
    server, _ = await serve([SumModel("sum")])
    for target in (b"/v2/models/sum/ready", b"/v2/models/%73um/ready", b"/v2/models/sum/ready?verbose=1",
                   b"http://x/v2/models/sum/ready", b"http://x/v2/models/sum/ready?a=b"):
        [(head, body)] = await _exchange(server, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target)
        assert head.startswith(b"HTTP/1.1 200 "), (target, head)
        assert json.loads(body) == {"name": "sum", "ready": True}, target
    [(head, body)] = await _exchange(server, _infer(path=b"/v2/models/s%75m/infer?x=1"))
    assert head.startswith(b"HTTP/1.1 200 ") and json.loads(body)["outputs"][0]["data"] == [3.0]
    [(head, body)] = await _exchange(server, b"GET /v2/models/%ZZ/ready HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 ") and json.loads(body)["error"]


async def test_http_1_0_is_answered_then_closed(serve):
    server, _ = await serve([SumModel("sum")])
    async with _connection(server) as (reader, writer):
        writer.write(_infer().replace(b"HTTP/1.1", b"HTTP/1.0", 1))
        head, body = await _answer(reader)
        assert head.startswith(b"HTTP/1.1 200 ") and b"connection: close" in head.lower()
        assert json.loads(body)["outputs"][0]["data"] == [3.0]
        assert await asyncio.wait_for(reader.read(), 20) == b""  # closed by the server


async def test_head_gets_the_head_alone_and_the_connection_serves_on(serve):
    server, _ = await serve([SumModel("sum")])
    async with _connection(server) as (reader, writer):
        writer.write(b"HEAD /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n" + _infer())
        head, _ = await _answer(reader, head_only=True)
        assert head.startswith(b"HTTP/1.1 200 ") and b"content-length:" in head.lower()
        head, body = await _answer(reader)  # the next answer starts right after the head: no body was sent
        assert head.startswith(b"HTTP/1.1 200 ") and json.loads(body)["outputs"][0]["data"] == [3.0]


async def test_expect_100_continue_gets_its_interim_answer(serve):
    server, _ = await serve([SumModel("sum")])
    async with _connection(server) as (reader, writer):
        request = _infer(extra=b"Expect: 100-continue\r\n")
        head, body = request.split(b"\r\n\r\n", 1)
        writer.write(head + b"\r\n\r\n")
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        head, body = await _answer(reader)
        assert head.startswith(b"HTTP/1.1 200 ") and json.loads(body)["outputs"][0]["data"] == [3.0]


async def test_pipelined_and_split_requests_are_answered_in_order(serve):
    server, _ = await serve([SumModel("sum")])
    rows = [json.dumps({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [i, i]}]}).encode()
            for i in range(4)]
    answers = await _exchange(server, b"".join(_infer(r) for r in rows), answers=4)
    assert [json.loads(body)["outputs"][0]["data"] for _, body in answers] == [[0.0], [2.0], [4.0], [6.0]]
    async with _connection(server) as (reader, writer):
        request = _infer(rows[3])
        for i in range(0, len(request), 7):  # head and body in small packets
            writer.write(request[i:i + 7])
            await writer.drain()
            await asyncio.sleep(0.001)
        head, body = await _answer(reader)
        assert head.startswith(b"HTTP/1.1 200 ") and json.loads(body)["outputs"][0]["data"] == [6.0]


async def test_a_websocket_upgrade_is_refused_and_the_server_serves_on(serve):
    """No door is a WebSocket: with a WebSocket library installed uvicorn hands the upgrade to the app,
    which refuses it before the handshake (403, not the 500 of an app that ignores it); without one the
    request is served as plain HTTP."""
    server, _ = await serve([SumModel("sum")])
    upgrade = (b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    [(head, _)] = await _exchange(server, upgrade, head_only=True)
    with_library = any(importlib.util.find_spec(m) for m in ("websockets", "wsproto"))
    assert head.startswith(b"HTTP/1.1 403 " if with_library else b"HTTP/1.1 200 "), head
    [(head, body)] = await _exchange(server, _infer())
    assert head.startswith(b"HTTP/1.1 200 ") and json.loads(body)["outputs"][0]["data"] == [3.0]


async def test_malformed_http_gets_a_json_400_naming_it_and_the_server_serves_on(serve):
    server, _ = await serve([SumModel("sum")])
    for raw, reason in ((b"G@T /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n", "method"),
                        (b"GET /v2/health/live HTTP/1.1\r\nHost x\r\n\r\n", "header"),
                        (b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n", "url"),
                        (b"POST /v2/models/sum/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "Transfer-Encoding")):
        async with _connection(server) as (reader, writer):
            writer.write(raw)
            head, body = await _answer(reader)
            assert head.startswith(b"HTTP/1.1 400 ") and b"connection: close" in head.lower(), (raw, head)
            assert b"content-type: application/json" in head.lower()
            error = json.loads(body)["error"]
            assert error.startswith("Invalid HTTP request: ") and reason in error, error
            assert await asyncio.wait_for(reader.read(), 20) == b""  # closed after the answer
    [(head, body)] = await _exchange(server, _infer())
    assert head.startswith(b"HTTP/1.1 200 ") and json.loads(body)["outputs"][0]["data"] == [3.0]

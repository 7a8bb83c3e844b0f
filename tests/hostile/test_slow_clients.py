"""Hostile connections (issue 9, defect 2): huge heads, slow heads, idle sockets, too many sockets.

Each test holds the hostile connections open on a real server and checks that a normal client is
served meanwhile, then checks what the hostile connections got.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.fixture_models import SumModel

INFER = b'{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}'


_writers: list[asyncio.StreamWriter] = []


@pytest.fixture(autouse=True)
async def _close_sockets():
    yield
    while _writers:
        _writers.pop().close()


async def _open(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
    _writers.append(writer)
    return reader, writer


async def _read_response(reader: asyncio.StreamReader, timeout: float = 20) -> tuple[int, dict, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", 0))), timeout)
    return status, headers, body


async def _closed(reader: asyncio.StreamReader, timeout: float = 20) -> bool:
    """Whether the server closes the connection (EOF or reset) within ``timeout`` seconds."""
    try:
        rest = await asyncio.wait_for(reader.read(), timeout)
    except (ConnectionResetError, BrokenPipeError):
        return True
    except asyncio.TimeoutError:
        return False
    return rest == b"" or True


async def _normal_client_served(client) -> None:
    assert (await client.get("/v2/health/live")).status_code == 200
    r = await client.post("/v2/models/sum/infer", content=INFER)
    assert r.status_code == 200, r.text


def _rss_kb() -> int:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def test_a_large_header_gets_431_and_memory_stays_bounded(serve):
    server, client = await serve([SumModel("sum")], max_header_size=16 * 1024)
    # Twenty connections each start a header that never ends; each is refused once it passes the limit.
    before = _rss_kb()
    conns = [await _open(server) for _ in range(20)]
    chunk = b"a" * 65536
    for reader, writer in conns:
        writer.write(b"POST /v2/models/sum/infer HTTP/1.1\r\nHost: x\r\nX-Big: ")
    answers = []
    for reader, writer in conns:
        try:
            for _ in range(16):  # 1 MB each, far past the limit; the server stops reading long before
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), 5)
        except (ConnectionError, asyncio.TimeoutError):
            pass
        answers.append(await _read_response(reader))
    assert {a[0] for a in answers} == {431}, answers[:2]
    assert all(a[1]["connection"] == "close" for a in answers)
    assert b"too large" in answers[0][2]
    assert _rss_kb() - before < 100 * 1024  # the probe saw +1.3 GB with 20 × 64 MB
    await _normal_client_served(client)


async def test_a_head_just_under_the_limit_is_served(serve):
    server, client = await serve([SumModel("sum")], max_header_size=8 * 1024)
    r = await client.post("/v2/models/sum/infer", content=INFER, headers={"x-pad": "a" * 7000})
    assert r.status_code == 200
    r = await client.post("/v2/models/sum/infer", content=INFER, headers={"x-pad": "a" * 9000})
    assert r.status_code == 431 and "too large" in r.json()["error"]
    await _normal_client_served(client)


async def test_too_many_header_fields_get_431(serve):
    server, client = await serve([SumModel("sum")], max_header_count=20)
    r = await client.post("/v2/models/sum/infer", content=INFER, headers={f"x-h{i}": "1" for i in range(10)})
    assert r.status_code == 200
    reader, writer = await _open(server)
    writer.write(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(50)) + b"\r\n")
    status, headers, body = await _read_response(reader)
    assert status == 431 and b"Too many request header fields (limit 20)" in body
    assert await _closed(reader)
    await _normal_client_served(client)


async def test_a_slow_head_gets_408_and_is_closed(serve):
    server, client = await serve([SumModel("sum")], header_timeout=0.5)
    slow = []
    for _ in range(20):  # slowloris: a head that never completes, one byte at a time
        reader, writer = await _open(server)
        writer.write(b"GET /v2/health/live HTTP/1.1\r\nX-Slow: ")
        slow.append((reader, writer))
    for reader, writer in slow:
        writer.write(b"a")
    await _normal_client_served(client)
    for reader, _ in slow:
        status, headers, body = await _read_response(reader)
        assert status == 408 and b"within 0.5 seconds" in body
        assert await _closed(reader)
    await _normal_client_served(client)


async def test_a_slow_body_gets_408_and_is_closed(serve):
    server, client = await serve([SumModel("sum")], body_timeout=0.5)
    slow = []
    for _ in range(5):  # a whole head, then part of the body, then nothing more
        reader, writer = await _open(server)
        writer.write(b"POST /v2/models/sum/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(INFER) + INFER[:10])
        slow.append((reader, writer))
    await _normal_client_served(client)
    for reader, _ in slow:
        status, headers, body = await _read_response(reader)
        assert status == 408 and headers["connection"] == "close" and b"body not received within 0.5 seconds" in body
        assert await _closed(reader)
    r, w = await _open(server)  # a normal request on a new connection
    w.write(b"POST /v2/models/sum/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(INFER) + INFER)
    status, _, body = await _read_response(r)
    assert status == 200, body
    await _normal_client_served(client)


async def test_idle_connections_close_before_and_after_a_first_request(serve):
    server, client = await serve([SumModel("sum")], keep_alive_timeout=0.5)
    silent = [await _open(server) for _ in range(10)]  # never send a byte
    reader, writer = await _open(server)  # one request, then silence
    writer.write(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = await _read_response(reader)
    assert status == 200 and headers.get("connection") != "close"
    await _normal_client_served(client)
    for r, _ in silent + [(reader, writer)]:
        assert await _closed(r), "an idle connection stayed open"
    # a client that keeps talking is not cut off by the idle timeout
    r2, w2 = await _open(server)
    for _ in range(3):
        w2.write(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await _read_response(r2))[0] == 200
    w2.close()


async def test_connections_beyond_the_cap_get_503(serve):
    server, client = await serve([SumModel("sum")], max_connections=8)
    held = [await _open(server) for _ in range(8)]
    reader, writer = await _open(server)
    writer.write(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = await _read_response(reader)
    assert status == 503 and headers["connection"] == "close" and b"Too many connections (limit 8)" in body
    assert await _closed(reader)
    # The held connections are served, and once they go a new client is served again.
    r0, w0 = held[0]
    w0.write(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await _read_response(r0))[0] == 200
    for _, w in held:
        w.close()
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        r, w = await _open(server)
        w.write(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        status = (await _read_response(r))[0]
        w.close()
        if status == 200 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert status == 200


@pytest.mark.parametrize("name,value", [("max_header_size", 0), ("header_timeout", 0), ("body_timeout", 0), ("keep_alive_timeout", -1),
                                        ("max_connections", -1), ("drain_delay", -1)])
def test_connection_settings_are_validated(name, value):
    from modelport.settings import SettingsError, load_server_settings

    with pytest.raises(SettingsError, match=name):
        load_server_settings(env={f"MODELPORT_{name.upper()}": str(value)})

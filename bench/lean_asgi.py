"""Between the floor and the raw floor: the floor's ASGI app (floor_app.py) behind the leanest ASGI
front end one could write on httptools and uvloop: a scope per request, a task per request (an ASGI
app may await anything), receive and send as bound methods, the head and a body joined in one write.
The gap between this and the floor is what replacing uvicorn's per-request cycle could save while
keeping the ASGI contract; the gap between this and the raw floor is the contract's own price.

    python bench/lean_asgi.py PORT
    python bench/cpuprobe.py --server lean-floor --proto v2,v1 --callgrind /tmp/cg/lean

A measuring stick only: no limits, no pipelining, no chunked answers, no error handling beyond a 400.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httptools
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
import floor_app  # noqa: E402
import raw_floor  # noqa: E402 - its protocol, less the answer

STATUS = {200: b"HTTP/1.1 200 OK\r\n", 400: b"HTTP/1.1 400 Bad Request\r\n", 404: b"HTTP/1.1 404 Not Found\r\n"}
_ASGI = {"version": "3.0", "spec_version": "2.3"}


class Cycle:
    __slots__ = ("transport", "body", "head")

    def __init__(self, transport: asyncio.Transport, body: bytes):
        self.transport, self.body, self.head = transport, body, None

    async def receive(self) -> dict:
        return {"type": "http.request", "body": self.body, "more_body": False}

    async def send(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            parts = [STATUS[message["status"]]]
            for name, value in message.get("headers", ()):
                parts += (name, b": ", value, b"\r\n")
            parts.append(b"\r\n")
            self.head = b"".join(parts)
        else:
            self.transport.write(self.head + message.get("body", b""))


class LeanAsgi(raw_floor.RawFloor):
    """raw_floor's protocol (parser, URL and body callbacks), answering through the ASGI app instead."""

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self.server = transport.get_extra_info("sockname")[:2]
        self.client = transport.get_extra_info("peername")[:2]
        self.headers = []
        self.loop = asyncio.get_running_loop()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_message_complete(self) -> None:
        url = httptools.parse_url(self.url)
        scope = {"type": "http", "asgi": _ASGI, "http_version": "1.1", "method": self.parser.get_method().decode(),
                 "scheme": "http", "path": url.path.decode(), "raw_path": url.path, "query_string": url.query or b"",
                 "root_path": "", "headers": self.headers, "server": self.server, "client": self.client}
        cycle = Cycle(self.transport, b"".join(self.body))
        self.url, self.headers, self.body = b"", [], []
        self.loop.create_task(floor_app.app(scope, cycle.receive, cycle.send))


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(LeanAsgi, "127.0.0.1", port)
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))

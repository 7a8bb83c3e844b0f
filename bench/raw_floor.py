"""Below the floor: the floor's work (floor_app.py: parse, predict, encode) behind a bare asyncio protocol
with httptools and uvloop, and no ASGI: no scope, no task per request, no receive/send, one write per
answer. It sizes what any HTTP/1.1 front end could still save under an ASGI server: the gap between
this and the floor is uvicorn's per-request cost, and no ASGI app can go below it.

    python bench/raw_floor.py PORT            # keep-alive HTTP/1.1, the floor's routes
    python bench/cpuprobe.py --server raw-floor --proto v2,v1 --wrk 5

Not a server: no limits, no pipelining guarantees beyond what httptools gives, no error handling
beyond a 400. A measuring stick only.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httptools
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
import floor_app  # noqa: E402 - the floor's model and its parse/predict/encode

ROUTES = {(b"POST", floor_app.V2_INFER.encode()): floor_app._v2, (b"POST", floor_app.V1_PREDICT.encode()): floor_app._v1}
HEALTH = {p.encode() for p in floor_app.HEALTH}


class RawFloor(asyncio.Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)
        self.url, self.body = b"", []

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        url, body = self.url, b"".join(self.body)
        self.url, self.body = b"", []
        handler = ROUTES.get((self.parser.get_method(), url))
        status, payload = 200, b"{}"
        try:
            if handler is not None:
                payload = handler(body)
            elif url not in HEALTH:
                status, payload = 404, b'{"error":"not found"}'
        except Exception as exc:  # noqa: BLE001 - bad input: answered like the floor answers it
            status, payload = 400, floor_app.orjson.dumps({"error": str(exc)})
        self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                             % (status, b"OK" if status == 200 else b"Error", len(payload), payload))


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(RawFloor, "127.0.0.1", port)
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))

"""The HTTP/1.1 connection guard: uvicorn's httptools protocol with limits, timeouts and a lossless drain.

uvicorn+httptools has no header limits, starts its keep-alive timer only after a first response, and
on shutdown closes idle keep-alive connections under requests their clients have already written.
This subclass adds, per connection:

- a cap on request-head bytes (request line + headers) and header count: 431 and close. Bytes are
  counted as they arrive, so an unfinished 64 MB header is refused after ``max_header_size`` bytes;
- timeouts, enforced by one sweep per server (no timer per request): a request head must arrive
  within ``header_timeout`` seconds and its body within ``body_timeout`` seconds after the head (408
  and close: a body trickled a byte at a time would otherwise hold its connection for good), and a
  connection idle for ``keep_alive_timeout`` seconds closes, before its first request too;
- a connection cap: connections beyond ``max_connections`` get one 503 with ``Connection: close``;
- a drain (``ConnectionGuard.drain()``): every response from then on carries ``Connection: close``, so
  keep-alive clients reconnect elsewhere; an idle connection is not closed at once (its client may
  have a request on the wire) but answered and closed, or closed once it has stayed idle a moment.
"""

from __future__ import annotations

import asyncio
import resource
from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

# Connection phases, for the sweep. _BODY: head parsed, body still arriving; _BUSY: the app has it all.
_IDLE, _HEAD, _BUSY, _LINGER, _BODY = 0, 1, 2, 3, 4

# After refusing a request, read and discard what the client still sends for this long before closing:
# closing a socket with unread data resets it, and the client would lose the answer.
LINGER = 2.0

# During a drain, a connection idle this long is taken to be truly idle and closed.
DRAIN_IDLE_CLOSE = 0.5

# Request body bytes buffered here before the app is handed them. uvicorn wakes the app at every chunk
# and pauses reading past 64 KiB, so a 600 KB tensor arrived in several receive() calls, each copying
# a bytearray, joined once more by the app. The app reads whole bodies (up to max_request_size) anyway,
# so holding up to this much here costs no extra memory; one receive() then takes the whole body.
BODY_HIGH_WATER = 4 * 1024 * 1024


# A response body up to this size is joined to its head and written in one call (one send(2), one
# TCP segment); a larger one is written after the head as it is, never copied.
JOIN_BODY = 64 * 1024


@dataclass
class Limits:
    max_header_size: int = 64 * 1024
    max_header_count: int = 128
    header_timeout: float = 10.0
    keep_alive_timeout: float = 30.0
    max_connections: int = 0  # 0: derived from the open-file limit
    body_timeout: float = 30.0


def default_max_connections() -> int:
    """Most connections one process takes: its open-file limit less room for models, logs and gRPC."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 10000
    return max(64, min(int(soft * 0.9), soft - 100))


class _Rejected(Exception):
    """Raised from a parser callback to stop parsing a request that has been answered already."""


class ConnectionGuard:
    """Per-server state shared by its connections: limits, the drain flag, and the sweep."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.max_connections = limits.max_connections or default_max_connections()
        self.draining = False
        self.drain_started = 0.0
        self.connections: set[GuardedProtocol] = set()
        self._sweeper: asyncio.Task | None = None

    def protocol_class(self) -> type:
        """The class to give uvicorn as ``http=``; it carries this guard."""
        return type("GuardedHttpToolsProtocol", (GuardedProtocol,), {"guard": self})

    def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep_forever())

    async def stop(self) -> None:
        """After the HTTP server has stopped: close what is left (e.g. heads still unfinished at the end of the grace)."""
        for conn in list(self.connections):
            conn.transport.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            try:
                await self._sweeper
            except asyncio.CancelledError:
                pass
            self._sweeper = None

    def drain(self) -> None:
        """From now on: every response closes its connection; idle connections close soon."""
        if self.draining:
            return
        self.draining = True
        self.drain_started = asyncio.get_running_loop().time()
        for conn in list(self.connections):
            conn.begin_drain()

    async def _sweep_forever(self) -> None:
        limits = self.limits
        period = max(0.05, min(1.0, limits.header_timeout / 4, limits.keep_alive_timeout / 4, limits.body_timeout / 4))
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(DRAIN_IDLE_CLOSE / 2 if self.draining else period)
            now = loop.time()
            for conn in list(self.connections):
                conn.check_deadline(now)


class _HeadSink:
    """Stands in for the transport while uvicorn builds a response head: keeps the head instead of sending it."""

    __slots__ = ("head",)

    def write(self, data: bytes) -> None:
        self.head = data


class OneWriteCycle(RequestResponseCycle):
    """uvicorn's request/response cycle, with the response head held back until the first body part and
    written with it: a whole answer goes out in one ``transport.write`` (one syscall) instead of two.
    uvicorn itself checks and builds the head (into a ``_HeadSink``) and writes the body, so its rules
    (header checks, ``connection: close``, Content-Length accounting, completion) stay its own. A HEAD
    request, a paused transport or a disconnected client takes uvicorn's path unchanged; a streamed
    (chunked) answer's head and a body over JOIN_BODY are written as they come, never joined."""

    _head: bytes | None = None  # the built head, not yet written

    async def send(self, message: dict) -> None:
        head = self._head
        if head is None:
            if (message["type"] != "http.response.start" or self.response_started or self.disconnected
                    or self.flow.write_paused or self.scope["method"] == "HEAD"):
                return await super().send(message)
            transport, sink = self.transport, _HeadSink()
            self.transport = sink
            try:
                await super().send(message)
            finally:
                self.transport = transport
            if self.chunked_encoding:  # a stream: its head goes out now, not with its first event
                transport.write(sink.head)
            else:
                self._head = sink.head
            return
        self._head = None
        if not self.disconnected:
            body = message.get("body", b"") if message["type"] == "http.response.body" else None
            if body is None or len(body) > JOIN_BODY or self.flow.write_paused:
                self.transport.write(head)
            else:  # uvicorn writes head and body as one body, its Content-Length count grown by the head
                self.expected_content_length += len(head)
                message = {**message, "body": head + body}
        return await super().send(message)


class GuardedProtocol(HttpToolsProtocol):
    guard: ConnectionGuard  # set on the subclass by ConnectionGuard.protocol_class()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        guard = self.guard
        guard.connections.add(self)
        self._phase = _IDLE
        self._since = self.loop.time()
        self._raw_bytes = 0  # bytes received since this request head began (a memory bound)
        self._head_bytes = 0  # request line and headers parsed so far (the exact limit)
        self._header_count = 0
        self._rejected = False
        self._over_cap = len(guard.connections) > guard.max_connections
        self._body_parts: list[bytes] = []  # body chunks not yet handed to the cycle (on_body)
        self._body_size = 0

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.connections.discard(self)
        super().connection_lost(exc)

    # -- request head: count bytes and headers ------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._rejected:
            return
        if self._phase != _BUSY and self._phase != _BODY:
            if self._phase == _IDLE:
                self._phase, self._since, self._raw_bytes = _HEAD, self.loop.time(), 0
            self._raw_bytes += len(data)
        try:
            super().data_received(data)
        except _Rejected:  # pragma: no cover - uvicorn catches parser errors itself
            return
        # The head is still unfinished and already too large: refuse before buffering more of it.
        if self._phase == _HEAD and self._raw_bytes > self.guard.limits.max_header_size and not self._rejected:
            self._reject(431, "Request header fields too large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._header_count = 0
        if self._phase == _IDLE:
            self._phase, self._since, self._raw_bytes = _HEAD, self.loop.time(), 0

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        if self._head_bytes > self.guard.limits.max_header_size:
            self._reject(414 if self._header_count == 0 else 431, "Request line or header fields too large")
            raise _Rejected()
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        self._header_count += 1
        limits = self.guard.limits
        if self._head_bytes > limits.max_header_size:
            self._reject(431, f"Request header fields too large (limit {limits.max_header_size} bytes)")
            raise _Rejected()
        if self._header_count > limits.max_header_count:
            self._reject(431, f"Too many request header fields (limit {limits.max_header_count})")
            raise _Rejected()
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        # The body clock starts now; on_message_complete (at once for a request without a body) stops it.
        self._phase, self._since, self._raw_bytes = _BODY, self.loop.time(), 0
        if self._over_cap:
            self._reject(503, f"Too many connections (limit {self.guard.max_connections}); retry later")
            raise _Rejected()
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None:
            # uvicorn builds its own cycle class here; its task has not run yet, so every send goes to ours.
            cycle.__class__ = OneWriteCycle
            if self.guard.draining:
                cycle.keep_alive = False

    # -- request body: gathered here, handed over once ------------------------------------------
    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if cycle.response_complete or (self.parser.should_upgrade() and self._should_upgrade()):
            return
        self._body_parts.append(body)
        self._body_size += len(body)
        if self._body_size > BODY_HIGH_WATER:
            self._hand_body()
            self.flow.pause_reading()  # receive() resumes it

    def on_message_complete(self) -> None:
        if self._phase == _BODY:
            self._phase = _BUSY
        if self._body_parts:
            self._hand_body()
        super().on_message_complete()

    def _hand_body(self) -> None:
        """Give the cycle the gathered chunks as one bytes object: uvicorn's receive() passes a bytes
        body on as is (bytes(b) is b), so a body that came in one chunk is never copied here."""
        cycle, parts = self.cycle, self._body_parts
        if cycle.body:  # what the app has not taken yet comes first
            parts.insert(0, bytes(cycle.body))
        cycle.body = parts[0] if len(parts) == 1 else b"".join(parts)
        self._body_parts, self._body_size = [], 0
        cycle.message_event.set()

    def on_response_complete(self) -> None:
        # uvicorn's, less its keep-alive timer (armed and cancelled once per request): the sweep closes
        # idle connections (check_deadline).
        self.server_state.total_requests += 1
        if not self.transport.is_closing():
            self.flow.resume_reading()
            if self.pipeline:
                cycle, app = self.pipeline.pop()
                self._start_asgi_task(cycle, app)
        if self.cycle is None or self.cycle.response_complete:
            self._phase, self._since = _IDLE, self.loop.time()

    # -- answers of our own ---------------------------------------------------------------------
    def send_400_response(self, msg: str) -> None:
        if not self._rejected:  # a parse error of our own making has been answered already
            super().send_400_response(msg)

    def _reject(self, status: int, message: str) -> None:
        """Answer ``status`` with ``{"error": message}`` and close; the rest of the request is ignored."""
        self._rejected = True
        if self.transport.is_closing():
            return
        body = b'{"error":"' + message.encode("ascii") + b'"}'
        phrase = {408: b"Request Timeout", 414: b"URI Too Long", 431: b"Request Header Fields Too Large",
                  503: b"Service Unavailable"}[status]
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
            % (status, phrase, len(body), body)
        )
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the answer and a FIN; what still comes in is discarded until LINGER
            self._phase, self._since = _LINGER, self.loop.time()
        else:  # pragma: no cover - TCP transports can
            self.transport.close()

    # -- timeouts and drain ---------------------------------------------------------------------
    def check_deadline(self, now: float) -> None:
        if self.transport.is_closing():
            return
        guard = self.guard
        if self._phase == _LINGER:
            if now - self._since > LINGER:
                self.transport.close()
        elif self._phase == _HEAD and now - self._since > guard.limits.header_timeout:
            self._reject(408, f"Request head not received within {guard.limits.header_timeout:g} seconds")
        elif self._phase == _BODY:
            if self.flow.read_paused:  # the app has not taken what came (BODY_HIGH_WATER): not the client's delay
                self._since = now
            elif now - self._since > guard.limits.body_timeout:
                self._body_timed_out(guard.limits.body_timeout)
        elif self._phase == _IDLE and not self.pipeline:
            idle = now - self._since
            if idle > guard.limits.keep_alive_timeout or (
                guard.draining and idle > DRAIN_IDLE_CLOSE and now - guard.drain_started > DRAIN_IDLE_CLOSE
            ):
                self.transport.close()

    def _body_timed_out(self, timeout: float) -> None:
        """408 and close; the app waiting for the rest of the body is told the client has gone, so it
        stops waiting and whatever it answers is dropped (the 408 is the answer)."""
        cycle = self.cycle
        if cycle is not None and cycle.response_started:  # the app answered already: nothing to say, just close
            self.transport.close()
            return
        self._reject(408, f"Request body not received within {timeout:g} seconds")
        if cycle is not None:
            cycle.disconnected = True
            cycle.message_event.set()

    def eof_received(self) -> bool | None:
        if self._rejected:
            self.transport.close()  # the client has finished sending after our refusal
        return None

    def begin_drain(self) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False

    def shutdown(self) -> None:
        # uvicorn closes idle connections here, under requests already on the wire; the sweep closes
        # them instead once they have stayed idle, and busy ones close after their response.
        self.guard.drain()
        self.begin_drain()


__all__ = ["ConnectionGuard", "GuardedProtocol", "Limits", "default_max_connections"]


"""The HTTP/1.1 connection: uvicorn's httptools protocol with limits, timeouts, a lossless drain and a
lean per-request path.

uvicorn's per-request cycle (parser callbacks that each call the next class's, a cycle built through an
eleven-argument constructor, a wait on an event for a body that is already here, a head and a body
written apart) cost about as much as modelport's own layers around a model: 45 k of a V1 request's
321 k instructions (bench/instructions.py). The connection does the same work in fewer steps: each
parser callback is one frame, the cycle is made directly (``Cycle.start``), a whole body is handed over
at once and a whole answer written at once. What leaves that path (HEAD, ``Expect: 100-continue``,
streamed answers, a paused transport) takes uvicorn's code unchanged.

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
import contextvars
import json
import resource
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httptools
from uvicorn.protocols.http.httptools_impl import (HEADER_RE, HEADER_VALUE_RE, STATUS_LINE, HttpToolsProtocol,
                                                  RequestResponseCycle)
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

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


class Cycle(RequestResponseCycle):
    """uvicorn's request/response cycle with a lean path for the common request and answer.

    - Made here, not by uvicorn's eleven-argument constructor (``Cycle.start``).
    - ``receive``: a body that has fully arrived is handed over at once (no wait on the event).
    - ``send``: the head is built here, by uvicorn's rules (header checks, Content-Length, ``connection:
      close``, chunked when no length is given), and held back until the first body part: a whole
      answer goes out in one ``transport.write`` (one syscall) instead of two. A body up to JOIN_BODY is
      joined to the head and completes the answer here; a larger one is written after the head as it
      is, never copied.

    Anything else (a HEAD request, a paused transport, a disconnected client, ``Expect: 100-continue``,
    a streamed answer after its head, a misuse of the protocol) takes uvicorn's own path unchanged."""

    _head: bytes | None = None  # the built head, not yet written
    _taken = False  # the whole body has been handed to the app

    @classmethod
    def start(cls, protocol: "GuardedProtocol", scope: dict, keep_alive: bool) -> "Cycle":
        cycle = cls.__new__(cls)
        # The attributes RequestResponseCycle.__init__ sets, in its order.
        cycle.scope = scope
        cycle.transport = protocol.transport
        cycle.flow = protocol.flow
        cycle.logger = protocol.logger
        cycle.access_logger = protocol.access_logger
        cycle.access_log = protocol.access_log
        cycle.default_headers = protocol.server_state.default_headers
        cycle.message_event = asyncio.Event()
        cycle.on_response = protocol.on_response_complete
        cycle.disconnected = False
        cycle.keep_alive = keep_alive
        cycle.waiting_for_100_continue = protocol.expect_100_continue
        cycle.body = b""
        cycle.more_body = True
        cycle.response_started = False
        cycle.response_complete = False
        cycle.chunked_encoding = None
        cycle.expected_content_length = 0
        return cycle

    async def receive(self) -> dict:
        if self.more_body or self._taken or self.disconnected or self.response_complete or self.waiting_for_100_continue:
            return await super().receive()
        # The whole body is here (on_message_complete has set the event): what uvicorn's wait would return.
        self._taken = True
        self.flow.resume_reading()
        self.message_event.clear()
        body, self.body = self.body, b""
        return {"type": "http.request", "body": body if type(body) is bytes else bytes(body), "more_body": False}

    async def send(self, message: dict) -> None:
        head = self._head
        if head is None:
            if (message["type"] != "http.response.start" or self.response_started or self.disconnected
                    or self.flow.write_paused or self.scope["method"] == "HEAD"):
                return await super().send(message)
            head = self._build_head(message["status"], message.get("headers", ()))
            if self.chunked_encoding:  # a stream: its head goes out now, not with its first event
                self.transport.write(head)
            else:
                self._head = head
            return
        self._head = None
        if self.disconnected:
            return await super().send(message)
        body = message.get("body", b"") if message["type"] == "http.response.body" else None
        if body is None or len(body) > JOIN_BODY or self.flow.write_paused:
            self.transport.write(head)
            return await super().send(message)
        size = len(body)
        if message.get("more_body", False) or size != self.expected_content_length:
            # uvicorn writes head and body as one body, its Content-Length count grown by the head
            self.expected_content_length += len(head)
            return await super().send({**message, "body": head + body})
        # The whole answer: uvicorn's completion, after one write.
        self.expected_content_length = 0
        self.transport.write(head + body)
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            self.transport.close()
        self.on_response()

    def _build_head(self, status: int, headers: Any) -> bytes:
        """The status line and headers as uvicorn's send writes them, checked by its rules."""
        self.response_started = True
        self.waiting_for_100_continue = False
        if self.access_log:
            self.access_logger.info('%s - "%s %s HTTP/%s" %d', get_client_addr(self.scope), self.scope["method"],
                                    get_path_with_query_string(self.scope), self.scope["http_version"], status)
        content = [STATUS_LINE[status]]
        block = _default_block(self.default_headers)
        if block is None:
            headers = (*self.default_headers, *headers)
        else:
            content.append(block)
        has_connection_close = False
        for name, value in headers:
            if len(name.translate(None, _BAD_NAME)) != len(name):
                raise RuntimeError("Invalid HTTP header name.")
            if len(value.translate(None, _BAD_VALUE)) != len(value):
                raise RuntimeError("Invalid HTTP header value.")
            name = name.lower()
            if name == b"content-length" and self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
            elif name == b"connection":
                if b"close" in [token.lower().strip() for token in value.split(b",")]:
                    self.keep_alive = False
                    has_connection_close = True
            content += (name, b": ", value, b"\r\n")
        if not self.keep_alive and not has_connection_close:
            content.append(b"connection: close\r\n")
        if self.chunked_encoding is None and status not in (204, 304):  # (HEAD requests take uvicorn's path)
            self.chunked_encoding = True
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        return b"".join(content)


# The bytes uvicorn's header checks refuse (its patterns are one character class each), found with
# bytes.translate: a regex search sets up its matcher per header (~1.2 k instructions; 6 per answer).
if not all(p.pattern[:1] == b"[" and p.pattern[-1:] == b"]" for p in (HEADER_RE, HEADER_VALUE_RE)):
    raise ImportError("uvicorn's header patterns are no longer one character class each: see _BAD_NAME")
_BAD_NAME = bytes(b for b in range(256) if HEADER_RE.search(bytes([b])))
_BAD_VALUE = bytes(b for b in range(256) if HEADER_VALUE_RE.search(bytes([b])))

# uvicorn's default headers (date, server) as one checked block of the head, for the list they were
# made from: uvicorn makes a new list once a second, and every answer until then starts with them.
_defaults: list = [None, None]
_FRAMING = (b"content-length", b"transfer-encoding", b"connection")


def _default_block(defaults: list) -> bytes | None:
    """The default headers rendered as _build_head's loop renders them, or None where the loop must
    see them: a name or value its checks refuse (it raises), or a header it acts on (framing)."""
    if _defaults[0] is not defaults:
        block: bytes | None = b"".join(name.lower() + b": " + value + b"\r\n" for name, value in defaults)
        if any(len(name.translate(None, _BAD_NAME)) != len(name) or len(value.translate(None, _BAD_VALUE)) != len(value)
               or name.lower() in _FRAMING for name, value in defaults):
            block = None
        _defaults[:] = [defaults, block]
    return _defaults[1]


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
        self._asgi_version = self.config.asgi_version  # a property of uvicorn's that builds a dict per read

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
        # uvicorn's data_received, less its keep-alive timer (never armed here: the sweep closes idle connections)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as exc:
            if self._rejected:  # a refusal of our own (_Rejected) has been answered already
                return
            # JSON like every other refusal, naming what the parser found (uvicorn answers plain text).
            if isinstance(exc, httptools.HttpParserCallbackError) and exc.__context__ is not None:
                exc = exc.__context__  # what our callback found (an unreadable URL), not "User callback error"
            self.logger.warning("Invalid HTTP request received: %s", exc)
            self._reject(400, f"Invalid HTTP request: {exc}")
            return
        # The head is still unfinished and already too large: refuse before buffering more of it.
        if self._phase == _HEAD and self._raw_bytes > self.guard.limits.max_header_size and not self._rejected:
            self._reject(431, "Request header fields too large")

    # uvicorn's parser callbacks and ours, each in one frame (every request runs them all).
    def on_message_begin(self) -> None:
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self.scope = {  # as uvicorn makes it
            "type": "http",
            "asgi": {"version": self._asgi_version, "spec_version": "2.3"},
            "http_version": "1.1",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,
            "root_path": self.root_path,
            "headers": self.headers,
            "state": self.app_state.copy(),
        }
        self._head_bytes = 0
        self._header_count = 0
        if self._phase == _IDLE:
            self._phase, self._since, self._raw_bytes = _HEAD, self.loop.time(), 0

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        if self._head_bytes > self.guard.limits.max_header_size:
            self._reject(414 if self._header_count == 0 else 431, "Request line or header fields too large")
            raise _Rejected()
        self.url += url

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
        name = name.lower()
        # llhttp keeps trailing whitespace, which RFC 9110 (5.5) excludes from the value.
        value = value.rstrip(b" \t")
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        # The body clock starts now; on_message_complete (at once for a request without a body) stops it.
        self._phase, self._since, self._raw_bytes = _BODY, self.loop.time(), 0
        if self._over_cap:
            self._reject(503, f"Too many connections (limit {self.guard.max_connections}); retry later")
            raise _Rejected()
        parser, scope = self.parser, self.scope
        http_version = parser.get_http_version()
        scope["method"] = parser.get_method().decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        if parser.should_upgrade() and self._should_upgrade():
            return
        url = self.url
        # Origin-form, no query: the path as sent. find, not "in": bytes' "in" tries its operand as an
        # int first, and the TypeError it formats and drops cost more than the search (1.8 k instructions).
        if url[:1] == b"/" and url.find(b"?") < 0 and url.find(b"#") < 0:
            raw_path, query = url, b""
        else:
            parsed = httptools.parse_url(url)
            raw_path, query = parsed.path, parsed.query or b""
        path = raw_path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        root = self.root_path
        scope["path"] = root + path if root else path
        scope["raw_path"] = root.encode("ascii") + raw_path if root else raw_path
        scope["query_string"] = query
        app = self.app
        limit = self.limit_concurrency
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            app = service_unavailable
            self.logger.warning("Exceeded concurrency limit.")
        existing = self.cycle
        self.cycle = cycle = Cycle.start(self, scope, http_version != "1.0" and parser.should_keep_alive()
                                         and not self.guard.draining)
        if existing is None or existing.response_complete:
            self._start_task(cycle, app)
        else:  # pipelined: queued until the answer before it is complete
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, app))

    def _start_task(self, cycle: Cycle, app: Any) -> None:
        """uvicorn's task per request (its own helper exists only in some uvicorn releases): tracked in
        the server's tasks, which its shutdown waits for."""
        if getattr(self.config, "reset_contextvars", False):  # uvicorn's opt-in (cpython#140947)
            task = self.loop.create_task(cycle.run_asgi(app), context=contextvars.Context())
        else:
            task = self.loop.create_task(cycle.run_asgi(app))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

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
        if self.parser.should_upgrade() and self._should_upgrade():
            return  # a WebSocket upgrade: uvicorn's, after the parser (no cycle was made)
        if self._body_parts:
            self._hand_body()
        cycle = self.cycle
        if cycle.response_complete:
            return
        cycle.more_body = False
        cycle.message_event.set()

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
                self._start_task(cycle, app)
        if self.cycle is None or self.cycle.response_complete:
            self._phase, self._since = _IDLE, self.loop.time()

    # -- answers of our own ---------------------------------------------------------------------
    def _reject(self, status: int, message: str) -> None:
        """Answer ``status`` with ``{"error": message}`` and close; the rest of the request is ignored."""
        self._rejected = True
        if self.transport.is_closing():
            return
        body = json.dumps({"error": message}).encode()  # the parser's reason may hold any character
        phrase = {400: b"Bad Request", 408: b"Request Timeout", 414: b"URI Too Long", 431: b"Request Header Fields Too Large",
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


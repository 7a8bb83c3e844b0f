"""The REST door: a plain ASGI callable. Decode → data plane → encode, nothing else.

Routing is a few string splits (no per-request framework work); every error becomes
``{"error": message}`` with the status from the one table in :mod:`.errors`.
"""

from __future__ import annotations

import logging
import zlib
from typing import Any, Awaitable, Callable

from ...compat import cloudevents
from ...dataplane import DataPlane
from ...controls.origin import check_admin_request
from ...errors import InvalidInput, ModelNotReady, PayloadTooLarge, Unimplemented
from ...metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ...metrics import Metrics
from ...streaming import ResponseStream, first_item
from ...wire import generate, v1_json, v2_json
from .errors import error_response, MethodNotAllowed, RouteNotFound
from .offload import DecodeOffload
from .openapi import docs_page, models_metadata, openapi_document
from .sse import Streamed, event, send_stream

logger = logging.getLogger("modelport")

JSON = b"application/json"
OCTET = b"application/octet-stream"
Headers = list[tuple[bytes, bytes]]
Response = tuple[int, bytes, bytes, Headers]  # status, body, content type, extra headers


class _ClientDisconnected(Exception):
    pass


def _json(value: Any, status: int = 200) -> Response:
    return status, v2_json.dumps(value), JSON, []


_ALIVE = (200, v2_json.dumps({"status": "alive"}), JSON, [])
_EMPTY_OK = (200, b"", JSON, [])


class RestApp:
    def __init__(
        self,
        dataplane: DataPlane,
        metrics: Metrics | None = None,
        max_request_size: int = 64 * 1024 * 1024,
        enable_docs: bool = True,
        decode_offload_size: int = 0,
    ):
        self.dataplane = dataplane
        self.metrics = metrics
        self.max_request_size = max_request_size
        self.enable_docs = enable_docs
        self._openai_routes: Any = None
        # Large V2 JSON bodies are decoded in a helper process (offload.py; issue 9).
        self.offload = DecodeOffload(decode_offload_size)
        # Extra route trees (prefix -> async handler(method, path, scope, receive) -> Response), e.g. the
        # console at /ui; looked up only after the inference routes, so they cost inference nothing.
        self.mounts: list[tuple[str, Callable[..., Awaitable[Response]]]] = []
        # Origins the CORS settings allow (set by the server): the admin Origin check lets them through too.
        self.allowed_origins: frozenset[str] = frozenset()

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await _lifespan(receive, send)
            return
        try:
            answer = await self._route(scope, receive)
            if isinstance(answer, Streamed):
                await send_stream(answer, receive, send)
                return
            status, body, content_type, headers = answer
        except _ClientDisconnected:
            return
        except Exception as exc:  # noqa: BLE001 - every failure becomes a response
            status, body, headers = error_response(exc, scope)
            content_type = JSON
        if type(body) is list:  # binary tensors: written as they are, after the JSON (no joined copy)
            await _send_parts(send, status, content_type, headers, body)
            return
        # A new list: canned responses (_ALIVE, _EMPTY_OK) share theirs across requests.
        headers = headers + [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    # -- routing -------------------------------------------------------------------------------
    async def _route(self, scope: dict, receive: Callable) -> Response:
        method: str = scope["method"]
        path: str = scope["path"]
        if path.startswith("/v2/models/"):
            rest = path[len("/v2/models/") :]
            if rest == "stats":  # Triton's statistics of every model (a model named "stats" loses this path)
                _allow(method, "GET")
                return _json({"model_stats": self.dataplane.model_statistics()})
            return await self._v2_model(method, rest, scope, receive)
        if path.startswith("/v1/models"):
            return await self._v1(method, path[len("/v1/models") :], scope, receive)
        if path.startswith("/v2/repository/"):
            return await self._repository(method, path[len("/v2/repository/") :], scope, receive)
        if path.startswith("/openai/") or path in _OPENAI_V1:
            return await self._openai(method, path, scope, receive)
        simple = _SIMPLE_ROUTES.get(path)
        if simple is None:
            for prefix, handler in self.mounts:
                if path == prefix or path.startswith(prefix + "/"):
                    return await handler(method, path, scope, receive)
            if path.startswith("/docs/") and self.enable_docs:
                _allow(method, "GET")
                page = docs_page(path)
                if page is not None:
                    return page
            raise RouteNotFound(path)
        _allow(method, "GET")
        return simple(self)

    async def _v2_model(self, method: str, rest: str, scope: dict, receive: Callable) -> Response:
        # {m}[/versions/{v}][/ready|/infer]
        parts = rest.split("/")
        name, version, action = parts[0], None, ""
        tail = parts[1:]
        if len(tail) >= 2 and tail[0] == "versions":
            version, tail = tail[1], tail[2:]
        if len(tail) > 1 or not name or version == "":
            raise RouteNotFound("/v2/models/" + rest)
        if tail:
            action = tail[0]
        if action == "infer":
            _allow(method, "POST")
            return await self._v2_infer(name, version, scope, receive)
        if action in _STREAM_ACTIONS:
            _allow(method, "POST")
            return await self._v2_stream(action, name, version, scope, receive)
        if action == "ready":
            _allow(method, "GET")
            ready = self.dataplane.model_ready(name, version)
            return _json({"name": name, "ready": ready}, 200 if ready else 503)
        if action == "":
            _allow(method, "GET")
            return _json(self.dataplane.model_metadata(name, version))
        if action == "stats":
            _allow(method, "GET")
            return _json({"model_stats": self.dataplane.model_statistics(name, version)})
        if action == "health":
            _allow(method, "GET")
            return _json(self.dataplane.model_health(name, version))
        raise RouteNotFound("/v2/models/" + rest)

    async def _v2_infer(self, name: str, version: str | None, scope: dict, receive: Callable) -> Response:
        headers = _headers(scope)
        body = await self._read_body(headers, receive)
        header_length = v2_json.parse_header_length([v for k, v in scope["headers"] if k == b"inference-header-content-length"])
        self.dataplane.check_model(name, version)  # an unknown or unready model costs no decoding
        if header_length is None and self.offload.wants(body):
            request = await self.offload.decode_request(body, name, version, header_length)
        else:
            request = v2_json.decode_request(body, name, version, header_length)
        response, response_headers = await self.dataplane.infer(request, headers)
        parts, json_length = v2_json.encode_response_parts(response, request.use_binary_outputs)
        extra = _encode_headers(response_headers)
        if json_length is None:
            return 200, parts[0], JSON, extra
        extra.append((b"inference-header-content-length", str(json_length).encode()))
        return 200, parts, OCTET, extra  # a list: __call__ writes the parts in turn

    async def _v2_stream(self, action: str, name: str, version: str | None, scope: dict, receive: Callable) -> Any:
        """infer_stream (V2 JSON per event), generate and generate_stream (Triton's generate extension)."""
        headers = _headers(scope)
        body = await self._read_body(headers, receive)
        self.dataplane.check_model(name, version)  # an unknown or unready model costs no decoding
        if action == "infer_stream":
            header_length = v2_json.parse_header_length([v for k, v in scope["headers"] if k == b"inference-header-content-length"])
            request = v2_json.decode_request(body, name, version, header_length)
            encode = _v2_event  # events are JSON: SSE is text
        else:
            declared = self.dataplane.model_metadata(name, version).get("inputs")
            request = generate.request_from_dict(v2_json.loads(body), name, version, declared)
            encode = _generate_event
        stream = await self.dataplane.infer_stream(request, headers)
        try:
            extra = _encode_headers(stream.headers)
            if action == "generate":  # one answer: the streamed text joined
                responses = await stream.collect()
                if not responses:
                    raise InvalidInput(f"Model {name} produced no response")
                return 200, v2_json.dumps(generate.response_to_dict(generate.merge(responses))), JSON, extra
            return await _open_sse(stream, encode, extra, name)
        except BaseException:
            await stream.aclose()  # never leave a request in flight
            raise

    async def _openai(self, method: str, path: str, scope: dict, receive: Callable) -> Any:
        """The OpenAI-compatible routes (modelport/openai), loaded on first use (they need pydantic)."""
        if self._openai_routes is None:
            try:
                from ...openai.routes import OpenAIRoutes
            except ImportError as exc:  # pydantic is an optional extra
                raise Unimplemented(f"The OpenAI routes need pydantic: pip install 'modelport[openai]' ({exc})") from None

            self._openai_routes = OpenAIRoutes(self.dataplane)
        headers = _headers(scope)
        return await self._openai_routes.handle(method, path, headers, lambda: self._read_body(headers, receive))

    async def _v1(self, method: str, rest: str, scope: dict, receive: Callable) -> Response:
        if rest in ("", "/"):
            _allow(method, "GET")
            return _json({"models": self.dataplane.model_names()})
        if not rest.startswith("/"):
            raise RouteNotFound("/v1/models" + rest)
        name, sep, verb = rest[1:].rpartition(":")
        if not sep:
            _allow(method, "GET")
            name = rest[1:]
            if not self.dataplane.model_ready(name):
                raise ModelNotReady(name)
            return _json({"name": name, "ready": True})
        if verb not in ("predict", "explain") or not name:
            raise RouteNotFound("/v1/models" + rest)
        _allow(method, "POST")
        headers = _headers(scope)
        body = await self._read_body(headers, receive)
        self.dataplane.check_model(name)
        # V1 bodies as KServe decodes them: any JSON, raw bytes, or a CloudEvent (answered as one).
        payload, event = cloudevents.decode(body, headers)
        result, response_headers = await self.dataplane.infer_v1(name, payload, headers, verb)
        if isinstance(result, ResponseStream):
            return await _open_sse(result, _v1_event, _encode_headers(response_headers), name)
        if event is not None:
            body, content_type, ce_headers = cloudevents.encode(name, result, event)
            return 200, body, content_type, _encode_headers(response_headers) + ce_headers
        return 200, v1_json.encode_response(result), JSON, _encode_headers(response_headers)

    async def _repository(self, method: str, rest: str, scope: dict, receive: Callable) -> Response:
        _allow(method, "POST")
        headers = _headers(scope)
        body = await self._read_body(headers, receive)
        check_admin_request(headers, bool(body), self.allowed_origins)  # JSON or no body, no foreign Origin (CORS-listed ones pass)
        if rest == "index":
            doc = v2_json.loads(body) if body.strip() else {}
            if not isinstance(doc, dict):
                raise InvalidInput("Repository index body must be a JSON object")
            ready = doc.get("ready", False)
            if not isinstance(ready, bool):
                raise InvalidInput(f'Repository index "ready" must be true or false, got {ready!r}'[:200])
            return _json(self.dataplane.repository_index(ready_only=ready))
        parts = rest.split("/")
        if len(parts) == 3 and parts[0] == "models" and parts[1] and parts[2] in _ROUTING_ACTIONS:
            return _json(await _routing_admin(self.dataplane, parts[1], parts[2], body))
        if len(parts) == 3 and parts[0] == "models" and parts[1] and parts[2] in ("load", "unload"):
            if parts[2] == "load":
                await self.dataplane.load(parts[1])
            else:
                await self.dataplane.unload(parts[1])
            return _EMPTY_OK
        raise RouteNotFound("/v2/repository/" + rest)

    # -- simple GET endpoints ------------------------------------------------------------------
    def _live(self) -> Response:
        return _json({"live": True})

    def _ready(self) -> Response:
        doc = self.dataplane.readiness()  # not ready: why, and which models
        return _json(doc, 200 if doc["ready"] else 503)

    def _server_metadata(self) -> Response:
        return _json(self.dataplane.server_metadata())

    def _alive(self) -> Response:
        return _ALIVE

    def _metrics(self) -> Response:
        if self.metrics is None:
            raise RouteNotFound("/metrics")
        return 200, self.metrics.render(), METRICS_CONTENT_TYPE.encode(), []

    def _openapi(self) -> Response:
        if not self.enable_docs:
            raise RouteNotFound("/openapi.json")
        return _json(openapi_document(models_metadata(self.dataplane.repository)))

    def _docs(self) -> Response:
        if not self.enable_docs:
            raise RouteNotFound("/docs")
        return docs_page("/docs")

    # -- bodies --------------------------------------------------------------------------------
    async def _read_body(self, headers: dict[str, str], receive: Callable) -> bytes:
        limit = self.max_request_size
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"Request body of {declared} bytes exceeds the limit of {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientDisconnected()
            chunk = message.get("body", b"")
            more = message.get("more_body", False)
            size += len(chunk)
            if size > limit:
                # Discard the rest as it streams in (memory stays bounded) so the client can read the 413.
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _ClientDisconnected()
                    more = message.get("more_body", False)
                raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        encoding = headers.get("content-encoding")
        if encoding and encoding != "identity":
            body = _decompress(body, encoding, limit)
        return body


_SIMPLE_ROUTES: dict[str, Callable[[RestApp], Response]] = {
    "/": RestApp._alive,
    "/v2/health/live": RestApp._live,
    "/v2/health/ready": RestApp._ready,
    "/v2": RestApp._server_metadata,
    "/v2/": RestApp._server_metadata,
    "/metrics": RestApp._metrics,
    "/openapi.json": RestApp._openapi,
    "/docs": RestApp._docs,
}


# OpenAI routes also served under /v1; /v1/models is not among them: KServe V1 owns it.
_OPENAI_V1 = frozenset(("/v1/completions", "/v1/chat/completions", "/v1/embeddings"))
_STREAM_ACTIONS = ("infer_stream", "generate", "generate_stream")


def _v2_event(response: Any) -> bytes:
    body, _ = v2_json.encode_response(response, False)
    return event(body)


def _generate_event(response: Any) -> bytes:
    return event(v2_json.dumps(generate.response_to_dict(response)))


def _v1_event(item: Any) -> bytes:
    if isinstance(item, (bytes, bytearray)):
        return event(bytes(item))
    if isinstance(item, str):
        return event(item.encode("utf-8"))
    return event(v1_json.encode_response(item) if isinstance(item, dict) else v2_json.dumps(item))


async def _open_sse(stream: ResponseStream, encode: Callable[[Any], bytes], headers: Headers, model: str) -> Streamed:
    """Pull the first item (a failure now is a plain error answer), then hand the rest to the SSE sender."""
    try:
        has_first, first = await first_item(stream)
    except BaseException:
        await stream.aclose()
        raise
    return Streamed(stream, first, encode, headers=headers, has_first=has_first, model=model)


# Traffic policies (routing): read/replace, blue-green promote, rollback; each one data plane call.
_ROUTING_ACTIONS = ("traffic", "promote", "rollback")


async def _routing_admin(dataplane: DataPlane, name: str, action: str, body: bytes) -> Any:
    doc = v2_json.loads(body) if body.strip() else None
    if action == "traffic":
        return await dataplane.traffic(name, doc)
    if action == "promote":
        if not isinstance(doc, dict):
            raise InvalidInput("Promote needs a JSON body such as {\"version\": \"2\"}")
        return await dataplane.promote(name, doc.get("version"))
    return await dataplane.rollback(name)


async def _send_parts(send: Callable, status: int, content_type: bytes, headers: Headers, parts: list) -> None:
    """One response body written as consecutive parts (the JSON, then each tensor's buffer)."""
    size = sum(len(p) for p in parts)
    headers = headers + [(b"content-type", content_type), (b"content-length", str(size).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    last = len(parts) - 1
    for i, part in enumerate(parts):
        await send({"type": "http.response.body", "body": part, "more_body": i < last})


def _allow(method: str, allowed: str) -> None:
    if method != allowed and not (allowed == "GET" and method == "HEAD"):
        raise MethodNotAllowed(method, allowed)


def _headers(scope: dict) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


def _encode_headers(headers: dict[str, str]) -> Headers:
    return [(str(k).lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in headers.items()]


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    if encoding not in ("gzip", "deflate"):
        raise InvalidInput(f"Unsupported Content-Encoding {encoding!r}; use gzip, deflate or identity")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    decompressor = zlib.decompressobj(wbits)
    try:
        out = decompressor.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(f"Body is not valid {encoding} data: {exc}") from None
    if len(out) > limit or decompressor.unconsumed_tail:
        raise PayloadTooLarge(f"Decompressed request body exceeds the limit of {limit} bytes")
    # zlib stops quietly at a missing trailer (CRC and size) and ignores what follows the stream.
    if not decompressor.eof:
        raise InvalidInput(f"Body is not valid {encoding} data: the stream is truncated (no end or checksum)")
    if decompressor.unused_data:
        raise InvalidInput(f"Body is not valid {encoding} data: {len(decompressor.unused_data)} bytes follow the compressed stream")
    return out


async def _lifespan(receive: Callable, send: Callable) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


__all__ = ["RestApp"]

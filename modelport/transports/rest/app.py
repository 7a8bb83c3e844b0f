"""The REST door: a plain ASGI callable. Decode → data plane → encode, nothing else.

Routing is a few string splits (no per-request framework work); every error becomes
``{"error": message}`` with the status from the one table in :mod:`.errors`.
"""

from __future__ import annotations

import logging
import zlib
from typing import Any, Awaitable, Callable, Iterable

from ... import doors, shm
from ...wire import cloudevents
from ...dataplane.plane import DataPlane
from ...controls.auth import may_see, visible
from ...controls.origin import HostRule, check_admin_request
from ...doors import RestRouter, RouteMiss
from ...errors import InvalidInput, ModelNotReady, PayloadTooLarge, Unimplemented
from ...observability.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ...observability.metrics import Metrics
from ...observability.edge import RESPONSE_HEADERS, decoded_headers
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
        # Extra route trees added by mount() (prefix, handler), e.g. the console at /ui; their doors are
        # in the router like every other.
        self.mounts: list[tuple[str, Callable[..., Awaitable[Response]]]] = []
        self.router = self._build_router()
        # Origins the CORS settings allow (set by the server): the admin Origin check lets them through too.
        self.allowed_origins: frozenset[str] = frozenset()
        # The Host a browser's admin request may name (DNS rebinding; controls/origin.py). Set by the
        # server when no api_keys are set; None: no check (an admin key is needed anyway).
        self.admin_hosts: HostRule | None = None

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await _lifespan(receive, send)
            elif scope["type"] == "websocket":  # no door is a WebSocket: refused before the handshake (403)
                await send({"type": "websocket.close", "code": 1008})
            return
        try:
            # The controls (controls/rest.py) have matched the request already when they run. Kept in
            # the scope either way: the request edge names the access log line and the span by it.
            found = scope.get(MATCH)
            if found is None:
                found = scope[MATCH] = self.match(scope)
            if found[0].kind == doors.ADMIN and self.admin_hosts is not None:
                local = scope.get("server")
                self.admin_hosts.check(decoded_headers(scope), local[0] if local else None)
            answer = await found[1](scope, receive, found[2])
            if isinstance(answer, Streamed):
                await send_stream(answer, receive, send, scope.get(RESPONSE_HEADERS, ()))
                return
            status, body, content_type, headers = answer
        except _ClientDisconnected:
            return
        except Exception as exc:  # noqa: BLE001 - every failure becomes a response
            status, body, headers = self.error(exc, scope)
            content_type = JSON
        if type(body) is list:  # binary tensors: written as they are, after the JSON (no joined copy)
            await _send_parts(send, status, content_type, headers, body, scope.get(RESPONSE_HEADERS, ()))
            return
        # A new list: canned responses (_ALIVE, _EMPTY_OK) share theirs across requests. Last, the
        # request edge's headers (the request id), as it hands them down.
        headers = [*headers, (b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                   *scope.get(RESPONSE_HEADERS, ())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    # -- routing -------------------------------------------------------------------------------
    def _build_router(self) -> RestRouter:
        """Every declared REST door (modelport/doors.py) with its handler: what is not declared is 404."""
        router = RestRouter()
        for door in doors.REST:
            router.add(door, getattr(self, _HANDLERS[door.name.removesuffix(".version")]))
        return router

    def mount(self, prefix: str, handler: Callable[..., Awaitable[Response]], declared: Iterable[doors.Door]) -> None:
        """Serve a route tree under ``prefix``: ``handler(door, params, scope, receive)`` answers each of
        its ``declared`` doors (``params``: the door's path parameters) (each with its kind, checked by the controls like every built-in door).
        A door whose model is in the body (``model="body"``) calls ``controls.auth.authorize_model(name)``
        once it has parsed the name; an aggregate one (``"all"``) filters with ``controls.auth.visible``."""
        declared = tuple(declared)
        if not declared:
            raise ValueError(f"Mount {prefix}: a mount declares its doors")
        for door in declared:
            if door.path != prefix and not door.path.startswith(prefix.rstrip("/") + "/"):
                raise ValueError(f"Mount {prefix}: door {door.name} ({door.path}) is outside the mount")

        def answer_for(door: doors.Door) -> Callable[..., Awaitable[Response]]:
            async def answer(scope: dict, receive: Callable, params: dict) -> Response:
                return await handler(door, params, scope, receive)

            return answer

        for door in declared:
            self.router.add(door, answer_for(door))
        self.mounts.append((prefix, handler))

    def match(self, scope: dict) -> tuple[doors.Door, Any, dict[str, str]]:
        """The door a request is for, its handler and path parameters; RouteNotFound or MethodNotAllowed."""
        try:
            return self.router.match(scope["method"], scope["path"])
        except RouteMiss as miss:
            if miss.allowed:
                raise MethodNotAllowed(scope["method"], ", ".join(miss.allowed)) from None
            raise RouteNotFound(miss.path) from None

    def error(self, exc: BaseException, scope: dict) -> tuple[int, bytes, Headers]:
        """The error answer; a path under /openai/ that no door declares gets an OpenAI-shaped one."""
        if isinstance(exc, (RouteNotFound, MethodNotAllowed)) and scope["path"].startswith("/openai/"):
            try:
                from ...openai.routes import error_body
            except ImportError:  # pydantic is an optional extra
                return error_response(exc, scope)
            status, body = error_body(exc)
            return status, body, [(b"allow", exc.allowed.encode())] if isinstance(exc, MethodNotAllowed) else []
        return error_response(exc, scope)

    # -- V2 (Open Inference Protocol) ----------------------------------------------------------
    async def _stats(self, scope: dict, receive: Callable, params: dict) -> Response:
        """Triton's statistics of every model (a model named "stats" loses this path), the caller's only."""
        return _json({"model_stats": [m for m in self.dataplane.model_statistics() if may_see(m["name"])]})

    async def _model_metadata(self, scope: dict, receive: Callable, params: dict) -> Response:
        return _json(self.dataplane.model_metadata(params["model_name"], params.get("model_version")))

    async def _model_ready(self, scope: dict, receive: Callable, params: dict) -> Response:
        name = params["model_name"]
        ready = self.dataplane.model_ready(name, params.get("model_version"))
        return _json({"name": name, "ready": ready}, 200 if ready else 503)

    async def _model_stats(self, scope: dict, receive: Callable, params: dict) -> Response:
        return _json({"model_stats": self.dataplane.model_statistics(params["model_name"], params.get("model_version"))})

    async def _model_health(self, scope: dict, receive: Callable, params: dict) -> Response:
        return _json(self.dataplane.model_health(params["model_name"], params.get("model_version")))

    def _infer(self, scope: dict, receive: Callable, params: dict) -> Awaitable[Response]:
        # Handing on the coroutine (no async wrapper) saves a frame per request; so does _v1_predict.
        return self._v2_infer(params["model_name"], params.get("model_version"), scope, receive)

    async def _infer_stream(self, scope: dict, receive: Callable, params: dict) -> Any:
        return await self._v2_stream("infer_stream", params["model_name"], params.get("model_version"), scope, receive)

    async def _generate(self, scope: dict, receive: Callable, params: dict) -> Any:
        return await self._v2_stream("generate", params["model_name"], params.get("model_version"), scope, receive)

    async def _generate_stream(self, scope: dict, receive: Callable, params: dict) -> Any:
        return await self._v2_stream("generate_stream", params["model_name"], params.get("model_version"), scope, receive)

    async def _v2_infer(self, name: str, version: str | None, scope: dict, receive: Callable) -> Response:
        headers = decoded_headers(scope)
        body = await self._read_body(headers, receive)
        header_length = _header_length(scope, headers)
        self.dataplane.check_model(name, version)  # an unknown or unready model costs no decoding
        if header_length is None and self.offload.wants(body):
            request = await self.offload.decode_request(body, name, version, header_length)
        else:
            request = v2_json.decode_request(body, name, version, header_length)
        shared = shm.bind(self.dataplane.shared_memory, request, lambda: _local(scope))  # None: no tensor in shared memory
        response, response_headers = await self.dataplane.infer(request, headers)
        if shared is not None:
            response = shared.write(response)
        parts, json_length = v2_json.encode_response_parts(response, request.use_binary_outputs)
        extra = _encode_headers(response_headers) if response_headers else []
        if json_length is None:
            return 200, parts[0], JSON, extra
        extra.append((b"inference-header-content-length", str(json_length).encode()))
        return 200, parts, OCTET, extra  # a list: __call__ writes the parts in turn

    async def _v2_stream(self, action: str, name: str, version: str | None, scope: dict, receive: Callable) -> Any:
        """infer_stream (V2 JSON per event), generate and generate_stream (Triton's generate extension)."""
        headers = decoded_headers(scope)
        body = await self._read_body(headers, receive)
        self.dataplane.check_model(name, version)  # an unknown or unready model costs no decoding
        if action == "infer_stream":
            request = v2_json.decode_request(body, name, version, _header_length(scope, headers))
            shm.refuse(request, action)
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

    async def _openai(self, scope: dict, receive: Callable, params: dict) -> Any:
        """The OpenAI-compatible routes (modelport/openai), loaded on first use (they need pydantic)."""
        if self._openai_routes is None:
            try:
                from ...openai.routes import OpenAIRoutes
            except ImportError as exc:  # pydantic is an optional extra
                raise Unimplemented(f"The OpenAI routes need pydantic: pip install 'modelport[openai]' ({exc})") from None

            self._openai_routes = OpenAIRoutes(self.dataplane)
        headers = decoded_headers(scope)
        return await self._openai_routes.handle(scope["method"], scope["path"], headers, lambda: self._read_body(headers, receive))

    # -- KServe V1 -----------------------------------------------------------------------------
    async def _v1_models(self, scope: dict, receive: Callable, params: dict) -> Response:
        return _json({"models": visible(self.dataplane.model_names())})

    async def _v1_ready(self, scope: dict, receive: Callable, params: dict) -> Response:
        name = params["model_name"]
        if not self.dataplane.model_ready(name):
            raise ModelNotReady(name)
        return _json({"name": name, "ready": True})

    def _v1_predict(self, scope: dict, receive: Callable, params: dict) -> Awaitable[Response]:
        return self._v1_infer(params["model_name"], "predict", scope, receive)

    async def _v1_explain(self, scope: dict, receive: Callable, params: dict) -> Response:
        return await self._v1_infer(params["model_name"], "explain", scope, receive)

    async def _v1_infer(self, name: str, verb: str, scope: dict, receive: Callable) -> Response:
        headers = decoded_headers(scope)
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
        return 200, v1_json.encode_response(result), JSON, _encode_headers(response_headers) if response_headers else []

    # -- the repository API and routing policies (admin) ---------------------------------------
    async def _admin_body(self, scope: dict, receive: Callable) -> bytes:
        headers = decoded_headers(scope)
        body = await self._read_body(headers, receive)
        check_admin_request(headers, bool(body), self.allowed_origins)  # JSON or no body, no foreign Origin (CORS-listed ones pass)
        return body

    async def _repository_index(self, scope: dict, receive: Callable, params: dict) -> Response:
        body = await self._admin_body(scope, receive)
        doc = v2_json.loads(body) if body.strip() else {}
        if not isinstance(doc, dict):
            raise InvalidInput("Repository index body must be a JSON object")
        ready = doc.get("ready", False)
        if not isinstance(ready, bool):
            raise InvalidInput(f'Repository index "ready" must be true or false, got {ready!r}'[:200])
        return _json([m for m in self.dataplane.repository_index(ready_only=ready) if may_see(m["name"])])

    async def _load(self, scope: dict, receive: Callable, params: dict) -> Response:
        await self._admin_body(scope, receive)
        await self.dataplane.load(params["model_name"])
        return _EMPTY_OK

    async def _unload(self, scope: dict, receive: Callable, params: dict) -> Response:
        await self._admin_body(scope, receive)
        await self.dataplane.unload(params["model_name"])
        return _EMPTY_OK

    async def _routing(self, scope: dict, receive: Callable, params: dict) -> Response:
        body = await self._admin_body(scope, receive)
        action = scope["path"].rpartition("/")[2]  # traffic, promote or rollback (the door's last segment)
        return _json(await _routing_admin(self.dataplane, params["model_name"], action, body))

    async def _shared_memory(self, scope: dict, receive: Callable, params: dict) -> Response:
        """Triton's system shared-memory extension: status, register, unregister (modelport/shm.py)."""
        body = await self._admin_body(scope, receive) if scope["method"] == "POST" else b""
        action = scope["path"].rpartition("/")[2]  # status, register or unregister (the door's last segment)
        return _json(shm.rest_action(self.dataplane.shared_memory, action, params.get("region_name"), body, _local(scope)))

    # -- simple GET endpoints ------------------------------------------------------------------
    async def _live(self, scope: dict, receive: Callable, params: dict) -> Response:
        return _json({"live": True})

    async def _ready(self, scope: dict, receive: Callable, params: dict) -> Response:
        doc = self.dataplane.readiness()  # not ready: why, and which models
        return _json(doc, 200 if doc["ready"] else 503)

    async def _server_metadata(self, scope: dict, receive: Callable, params: dict) -> Response:
        return _json(self.dataplane.server_metadata())

    async def _alive(self, scope: dict, receive: Callable, params: dict) -> Response:
        return _ALIVE

    async def _metrics(self, scope: dict, receive: Callable, params: dict) -> Response:
        if self.metrics is None:
            raise RouteNotFound("/metrics")
        return 200, self.metrics.render(), METRICS_CONTENT_TYPE.encode(), []

    async def _openapi(self, scope: dict, receive: Callable, params: dict) -> Response:
        if not self.enable_docs:
            raise RouteNotFound("/openapi.json")
        models = [m for m in models_metadata(self.dataplane.repository) if may_see(m["name"])]
        return _json(openapi_document(models, self.router.doors))

    async def _docs(self, scope: dict, receive: Callable, params: dict) -> Response:
        if not self.enable_docs:
            raise RouteNotFound(scope["path"])
        page = docs_page(scope["path"])
        if page is None:
            raise RouteNotFound(scope["path"])
        return page

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


# Each declared REST door's handler (a versioned door, "<name>.version", shares its unversioned twin's).
_HANDLERS = {
    "v1.alive": "_alive", "v2.live": "_live", "v2.ready": "_ready", "v2.server_metadata": "_server_metadata",
    "metrics": "_metrics", "openapi": "_openapi", "docs": "_docs", "docs.asset": "_docs",
    "v2.stats": "_stats", "v2.model_metadata": "_model_metadata", "v2.model_ready": "_model_ready",
    "v2.model_stats": "_model_stats", "v2.model_health": "_model_health", "v2.infer": "_infer",
    "v2.infer_stream": "_infer_stream", "v2.generate": "_generate", "v2.generate_stream": "_generate_stream",
    "v1.models": "_v1_models", "v1.model_ready": "_v1_ready", "v1.predict": "_v1_predict", "v1.explain": "_v1_explain",
    "openai.models": "_openai", "openai.model": "_openai",
    **{f"openai.{n}{alias}": "_openai" for n in ("completions", "chat_completions", "embeddings") for alias in ("", ".v1")},
    "repository.index": "_repository_index", "repository.load": "_load", "repository.unload": "_unload",
    "routing.traffic": "_routing", "routing.promote": "_routing", "routing.rollback": "_routing",
    **{f"shm.{n}": "_shared_memory" for n in ("status", "region_status", "register", "unregister", "unregister_all")},
}
# Where the controls leave the door they matched (the REST app then does not match again).
MATCH = doors.MATCH


def _local(scope: dict) -> bool:
    """Whether the client is on this host (shared memory in mode "local")."""
    client = scope.get("client")
    return shm.is_local_address(client[0] if client else None)


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
async def _routing_admin(dataplane: DataPlane, name: str, action: str, body: bytes) -> Any:
    doc = v2_json.loads(body) if body.strip() else None
    if action == "traffic":
        return await dataplane.traffic(name, doc)
    if action == "promote":
        if not isinstance(doc, dict):
            raise InvalidInput("Promote needs a JSON body such as {\"version\": \"2\"}")
        return await dataplane.promote(name, doc.get("version"))
    return await dataplane.rollback(name)


async def _send_parts(
    send: Callable, status: int, content_type: bytes, headers: Headers, parts: list, extra: Any = ()
) -> None:
    """One response body written as consecutive parts (the JSON, then each tensor's buffer)."""
    size = sum(len(p) for p in parts)
    headers = [*headers, (b"content-type", content_type), (b"content-length", str(size).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    last = len(parts) - 1
    for i, part in enumerate(parts):
        await send({"type": "http.response.body", "body": part, "more_body": i < last})


def _header_length(scope: dict, headers: dict[str, str]) -> int | None:
    """Inference-Header-Content-Length (binary tensors), or None. Read from the raw headers only when
    present: a header sent twice is refused, and the decoded dict keeps one of them."""
    if v2_json.HEADER_LENGTH not in headers:
        return None
    return v2_json.parse_header_length([v for k, v in scope["headers"] if k == b"inference-header-content-length"])


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

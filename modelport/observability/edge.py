"""What happens at the transports' edge for every request: the request id (taken from
``x-request-id`` or made, and echoed), the access log (off by default, sampled) and, when tracing is
on, the request span with its ``traceparent`` in and out.

With the access log and tracing off this is one decoding of the headers (kept in the scope for every
layer below: ``scope[HEADERS]``), one small object and one context variable per request, and the
headers to echo handed down in ``scope[RESPONSE_HEADERS]`` for whoever starts the answer: no wrapper
around ``send``."""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from ..doors import GRPC_BY_METHOD, MATCH, UNMATCHED, Door
from .context import REQUEST_ID_HEADER, RequestInfo, begin
from .logs import ACCESS_LOGGER

_RID = REQUEST_ID_HEADER.encode()
MAX_ID = 128  # longest request id taken from a client
_TRACE_HEADERS = ("traceparent", "tracestate")
# Scope keys. The request's headers as text, decoded once here and read by the controls and handlers.
HEADERS = "modelport.headers"
# Headers every answer carries (the request id, the traceparent): whoever sends http.response.start
# appends them (transports/rest, controls/rest). Absent while the edge wraps send itself (access log, tracing).
RESPONSE_HEADERS = "modelport.response_headers"
# Probes and scrapes are not traced: a span every few seconds per pod says nothing.
_UNTRACED = ("/v2/health/", "/metrics")


def decoded_headers(scope: dict) -> dict[str, str]:
    """The request's headers as text, decoded once per request and kept in ``scope[HEADERS]`` for the
    edge, the controls and the handlers. A loop, not a comprehension: on Python 3.11 a comprehension
    makes a function object per call."""
    headers = scope.get(HEADERS)
    if headers is None:
        headers = scope[HEADERS] = {}
        for name, value in scope["headers"]:
            headers[name.decode("latin-1")] = value.decode("latin-1")
    return headers


class RequestEdge:
    def __init__(self, access_log: bool = False, access_log_sample: float = 1.0, tracing: Any = None):
        self.access_log = access_log and access_log_sample > 0
        self.sample = access_log_sample
        self.tracing = tracing
        self._access = logging.getLogger(ACCESS_LOGGER)
        self._timed = self.access_log or tracing is not None

    # -- REST ----------------------------------------------------------------------------------
    def begin_rest(self, scope: dict) -> RequestInfo:
        headers = decoded_headers(scope)
        rid = headers.get(REQUEST_ID_HEADER)
        if rid is not None and not 0 < len(rid) <= MAX_ID:  # a longer one is replaced, not echoed
            rid = None
        carrier = None
        if self.tracing is not None:
            carrier = {k: headers[k] for k in _TRACE_HEADERS if k in headers}
        info = begin(rid, "rest")
        if self._timed:
            info.start = time.perf_counter()
            path = scope["path"]
            if self.tracing is not None and path != "/" and not path.startswith(_UNTRACED):
                # Named by the method until the door is matched (OpenTelemetry's name without a route);
                # end_rest renames it by the declared route: the raw path never names a span.
                self.tracing.start(info, carrier or {}, scope["method"], {"http.request.method": scope["method"], "url.path": path})
        return info

    def rest_headers(self, info: RequestInfo) -> list[tuple[bytes, bytes]]:
        headers = [(_RID, info.request_id.encode("latin-1"))]
        if info.traceparent is not None:
            headers.append((b"traceparent", info.traceparent.encode()))
        return headers

    def end_rest(self, info: RequestInfo, scope: dict, status: int, size: int) -> None:
        if not self._timed:
            return
        end = time.perf_counter()
        found = scope.get(MATCH)  # left by the controls or the REST app; absent: no door matched
        door = found[0] if found is not None else None
        if self.tracing is not None:
            attributes: dict = {"http.response.status_code": status}
            if door is not None:
                attributes["http.route"] = door.path
            self.tracing.end(info, end, attributes, error=status >= 500, name=door.route if door is not None else UNMATCHED)
        if self.access_log and (self.sample >= 1.0 or random.random() < self.sample):
            client = scope.get("client")
            self._log(info, scope["method"], scope["path"], status, size, end, f"{client[0]}:{client[1]}" if client else "-", door)

    # -- gRPC ----------------------------------------------------------------------------------
    def begin_grpc(self, headers: dict[str, str], method: str) -> RequestInfo:
        """``method``: the full gRPC method name, as declared ("/inference.GRPCInferenceService/ModelInfer")."""
        rid = headers.get(REQUEST_ID_HEADER)
        info = begin(rid if rid and len(rid) <= MAX_ID else None, "grpc")
        if self._timed:
            info.start = time.perf_counter()
            if self.tracing is not None:
                door = GRPC_BY_METHOD.get(method)
                self.tracing.start(info, headers, door.route if door is not None else UNMATCHED,
                                   {"rpc.system": "grpc", "rpc.method": method})
        return info

    def grpc_metadata(self, info: RequestInfo) -> tuple[tuple[str, str], ...]:
        if info.traceparent is not None:
            return ((REQUEST_ID_HEADER, info.request_id), ("traceparent", info.traceparent))
        return ((REQUEST_ID_HEADER, info.request_id),)

    def end_grpc(self, info: RequestInfo, method: str, code: str, peer: str, size: int) -> None:
        if not self._timed:
            return
        end = time.perf_counter()
        if self.tracing is not None:
            self.tracing.end(info, end, {"rpc.grpc.status_code": code}, error=code != "OK")
        if self.access_log and (self.sample >= 1.0 or random.random() < self.sample):
            self._log(info, "POST", method, code, size, end, peer, GRPC_BY_METHOD.get(method))

    def _log(self, info: RequestInfo, method: str, path: str, status: Any, size: int, end: float, client: str,
             door: Door | None) -> None:
        ms = (end - info.start) * 1000.0
        # The door beside the raw path: its declared route groups the lines (one per route, not per
        # model name or typo), its kind says who may call it.
        route, kind = (door.route, door.kind) if door is not None else (UNMATCHED, None)
        self._access.info(
            '%s "%s %s" %s %dB %.3fms door="%s" %s', client, method, path, status, size, ms, route, kind or "-",
            extra={"access": {"method": method, "path": path, "status": status, "bytes": size,
                              "duration_ms": round(ms, 3), "client": client, "door": route, "door_kind": kind}},
        )


class EdgeApp:
    """The REST door wrapped (ASGI): every answer, including the controls' refusals and CORS
    preflights, carries the request id and is access-logged and traced. Attribute reads go to the
    wrapped app (``server.app.mounts``)."""

    def __init__(self, app: Any, edge: RequestEdge):
        self.app = app
        self.edge = edge

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        edge = self.edge
        info = edge.begin_rest(scope)
        extra = edge.rest_headers(info)
        if not edge._timed:  # nothing to see of the answer: its sender appends the headers (no wrapper)
            scope[RESPONSE_HEADERS] = extra
            return await self.app(scope, receive, send)
        answer = [499, 0]  # status, body bytes (499: the client went away before an answer)

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                answer[0] = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            else:
                answer[1] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            edge.end_rest(info, scope, answer[0], answer[1])

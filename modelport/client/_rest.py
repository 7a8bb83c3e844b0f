"""REST clients for the Open Inference Protocol (V2) and KServe V1, on httpx.

``AsyncRESTClient`` and ``RESTClient`` are a pair with the same methods; KServe's SDK shape is kept
(``InferenceRESTClient(config).infer(base_url, data, model_name)``) so its users feel at home.
Requests are described once by pure builders (:class:`_Call`); each client only sends them, and
httpx errors become :mod:`.errors` in one place, :func:`_translate`.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Iterator, NamedTuple
from urllib.parse import quote

import httpx

from ..errors import InvalidInput
from ..types import InferRequest, InferResponse
from ..wire import v2_json
from ..wire.sse import SSEParser
from ._retry import RetryPolicy
from .errors import ClientError, ConnectionFailed, InvalidResponse, RequestTimeout, ServerError, TLSError

_PROTOCOLS = ("v1", "v2")


@dataclass
class RESTConfig:
    """How a REST client talks to a server. Every field has an effect a test checks.

    ``timeout`` and ``retries`` apply per call (a call's ``timeout=`` overrides the default; each
    attempt gets the whole timeout). ``retries`` counts attempts after the first, spaced by
    ``backoff * 2**n`` seconds (at most ``max_backoff``, with jitter); only connection failures
    and ``retry_statuses`` are retried. ``https`` picks the scheme for URLs given without one;
    ``verify`` is True (system trust), False, a CA bundle path or an ``ssl.SSLContext``; ``cert``
    is a client certificate (a PEM path holding cert and key, or a ``(cert, key)`` pair).
    ``binary_inputs``/``binary_outputs`` use the binary tensor extension for V2 inputs and ask for
    binary outputs (numeric data stays raw bytes on the wire; BYTES work too).
    """

    protocol: str = "v2"
    timeout: float = 60.0
    retries: int = 3
    backoff: float = 0.1
    max_backoff: float = 5.0
    retry_statuses: tuple[int, ...] = (429, 502, 503, 504)
    https: bool = False
    verify: bool | str | os.PathLike | ssl.SSLContext = True
    cert: str | tuple[str, str] | None = None
    headers: dict[str, str] | None = field(default=None)
    binary_inputs: bool = True
    binary_outputs: bool = True
    # Sent as "Authorization: Bearer <key>" on every call (a server with api_keys set needs one).
    api_key: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in _PROTOCOLS:
            raise ValueError(f"protocol must be 'v1' or 'v2', got {self.protocol!r}")
        if self.retries < 0:
            raise ValueError("retries must be 0 or more")


class _Call(NamedTuple):
    """One HTTP exchange, described without doing it."""

    method: str
    url: str
    parse: Callable[[httpx.Response], Any]
    content: bytes | None = None
    headers: dict[str, str] | None = None
    # Whether an error status in the retry list is retried (health checks answer 503 on purpose).
    retry_status: bool = True
    response_headers: dict | None = None


# -- translating httpx, the one boundary --------------------------------------------------------
def _translate(exc: Exception, call: _Call) -> ClientError:
    where = f"{call.method} {call.url}"
    if _tls_cause(exc):
        return TLSError(f"TLS failed for {where}: {_tls_cause(exc)}")
    if isinstance(exc, httpx.ConnectTimeout):
        return ConnectionFailed(f"Timed out connecting for {where}")
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeout(f"No answer within the timeout for {where}")
    if isinstance(exc, httpx.TransportError) and not isinstance(exc, httpx.UnsupportedProtocol):
        return ConnectionFailed(f"Cannot reach the server for {where}: {exc or type(exc).__name__}")
    return ClientError(f"{where}: {type(exc).__name__}: {exc}")


def _tls_cause(exc: BaseException | None) -> str | None:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ssl.SSLError):
            return str(exc)
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


# -- parsing answers ----------------------------------------------------------------------------
def _error_message(response: httpx.Response) -> str:
    body = response.content
    try:
        doc = v2_json.loads(body)
    except InvalidInput:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return doc["error"]
    text = body.decode("utf-8", "replace").strip()
    return text[:2000] or response.reason_phrase or "no message"


def _check(response: httpx.Response) -> None:
    if not 200 <= response.status_code < 300:
        raise ServerError(_error_message(response), response.status_code)


def _json(response: httpx.Response) -> Any:
    _check(response)
    try:
        return v2_json.loads(response.content, "Response body")
    except InvalidInput as exc:
        raise InvalidResponse(str(exc), response.status_code) from exc


def _nothing(response: httpx.Response) -> None:
    _check(response)


def _v2_infer(response: httpx.Response) -> InferResponse:
    _check(response)
    header = response.headers.get(v2_json.HEADER_LENGTH)
    try:
        length = int(header) if header is not None else None
        return v2_json.decode_response(response.content, length)
    except (InvalidInput, ValueError) as exc:
        raise InvalidResponse(f"Not a valid V2 inference response: {exc}", response.status_code) from exc


def _flag(key: str | None) -> Callable[[httpx.Response], bool]:
    """A health answer: 200 is yes (or the body's ``key``), 503 is no, anything else an error."""

    def parse(response: httpx.Response) -> bool:
        if response.status_code == 503:
            return False
        if key is None:
            _check(response)
            return True
        doc = _json(response)
        return bool(doc.get(key, False)) if isinstance(doc, dict) else False

    return parse


# -- the shared description of every call -------------------------------------------------------
class _RESTBase:
    def __init__(self, config: RESTConfig | None = None):
        self.config = config or RESTConfig()
        c = self.config
        self._policy = RetryPolicy(c.retries, c.backoff, c.max_backoff, frozenset(c.retry_statuses))

    def _client_options(self) -> dict[str, Any]:
        c = self.config
        headers = dict(c.headers or {})
        if c.api_key:
            headers.setdefault("authorization", f"Bearer {c.api_key}")
        return {"timeout": c.timeout, "verify": _ssl_context(c.verify, c.cert), "headers": headers}

    @staticmethod
    def _timeout(timeout: float | None) -> Any:
        return httpx.USE_CLIENT_DEFAULT if timeout is None else timeout

    def _base(self, base_url: str) -> str:
        if "://" not in base_url:
            base_url = ("https://" if self.config.https else "http://") + base_url
        return base_url.rstrip("/")

    def _model_path(self, base_url: str, model_name: str, version: str | None = None) -> str:
        path = f"{self._base(base_url)}/v2/models/{quote(model_name, safe='')}"
        return path if version is None else f"{path}/versions/{quote(version, safe='')}"

    def _infer(self, base_url: str, data: InferRequest | dict, model_name: str | None, headers: dict | None,
               response_headers: dict | None, is_graph_endpoint: bool) -> _Call:
        version = None
        if isinstance(data, InferRequest):
            model_name = model_name or data.model_name
            version = data.model_version
        if not model_name and not is_graph_endpoint:
            raise ValueError("infer needs a model_name (or an InferRequest that names its model)")
        send_headers = dict(headers or {})
        if self.config.protocol == "v1":
            if not isinstance(data, dict):
                raise TypeError(f"V1 infer sends a dict such as {{\"instances\": [...]}}, not {type(data).__name__}")
            url = self._base(base_url) if is_graph_endpoint else f"{self._base(base_url)}/v1/models/{quote(model_name, safe='')}:predict"
            send_headers.setdefault("content-type", "application/json")
            return _Call("POST", url, _json, v2_json.dumps(data), send_headers, response_headers=response_headers)
        url = self._base(base_url) if is_graph_endpoint else self._model_path(base_url, model_name, version) + "/infer"
        parse = _json if is_graph_endpoint else _v2_infer
        if isinstance(data, InferRequest):
            c = self.config
            content, json_length = v2_json.encode_request(data, c.binary_inputs, True if c.binary_outputs else None)
        elif isinstance(data, dict):
            content, json_length = v2_json.dumps(data), None
        else:
            raise TypeError(f"V2 infer sends an InferRequest or a dict, not {type(data).__name__}")
        if json_length is None:
            send_headers.setdefault("content-type", "application/json")
        else:
            send_headers.setdefault("content-type", "application/octet-stream")
            send_headers[v2_json.HEADER_LENGTH] = str(json_length)
        return _Call("POST", url, parse, content, send_headers, response_headers=response_headers)

    def _stream(self, base_url: str, data: InferRequest | dict, model_name: str | None, headers: dict | None,
                generate: bool) -> tuple[_Call, Callable[[str | None, str], Any]]:
        """A streaming request (V2 infer_stream, V1 :predict, or generate_stream) and how to read each event."""
        if generate:
            if not model_name or not isinstance(data, dict):
                raise TypeError("generate_stream sends a dict such as {\"text_input\": ...} to a named model")
            url = self._model_path(base_url, model_name) + "/generate_stream"
            send = {"content-type": "application/json", **(headers or {})}
            return _Call("POST", url, _json, v2_json.dumps(data), send), _json_event
        call = self._infer(base_url, data, model_name, headers, None, False)
        if self.config.protocol == "v1":
            return call, _v1_event
        return call._replace(url=call.url[: -len("/infer")] + "/infer_stream"), _v2_event

    def _explain(self, base_url: str, model_name: str, data: dict, headers: dict | None) -> _Call:
        # The Open Inference Protocol has no explain; the V1 route serves both protocols.
        url = f"{self._base(base_url)}/v1/models/{quote(model_name, safe='')}:explain"
        send_headers = {"content-type": "application/json", **(headers or {})}
        return _Call("POST", url, _json, v2_json.dumps(data), send_headers)

    def _server_live(self, base_url: str, headers: dict | None) -> _Call:
        if self.config.protocol == "v1":
            return _Call("GET", self._base(base_url) + "/", _flag(None), headers=headers, retry_status=False)
        return _Call("GET", self._base(base_url) + "/v2/health/live", _flag("live"), headers=headers, retry_status=False)

    def _server_ready(self, base_url: str, headers: dict | None) -> _Call:
        if self.config.protocol == "v1":
            return _Call("GET", self._base(base_url) + "/", _flag(None), headers=headers, retry_status=False)
        return _Call("GET", self._base(base_url) + "/v2/health/ready", _flag("ready"), headers=headers, retry_status=False)

    def _model_ready(self, base_url: str, model_name: str, version: str | None, headers: dict | None) -> _Call:
        if self.config.protocol == "v1":
            url = f"{self._base(base_url)}/v1/models/{quote(model_name, safe='')}"
        else:
            url = self._model_path(base_url, model_name, version) + "/ready"
        return _Call("GET", url, _flag("ready"), headers=headers, retry_status=False)

    def _server_metadata(self, base_url: str, headers: dict | None) -> _Call:
        return _Call("GET", self._base(base_url) + "/v2", _json, headers=headers)

    def _model_metadata(self, base_url: str, model_name: str, version: str | None, headers: dict | None) -> _Call:
        return _Call("GET", self._model_path(base_url, model_name, version), _json, headers=headers)

    def _repository_index(self, base_url: str, ready: bool, headers: dict | None) -> _Call:
        send = {"content-type": "application/json", **(headers or {})}
        return _Call("POST", self._base(base_url) + "/v2/repository/index", _json, v2_json.dumps({"ready": ready}), send)

    def _repository(self, base_url: str, model_name: str, action: str, headers: dict | None) -> _Call:
        url = f"{self._base(base_url)}/v2/repository/models/{quote(model_name, safe='')}/{action}"
        return _Call("POST", url, _nothing, b"", headers)


def _event_error(event: str | None, data: str) -> None:
    """An error event (or a data object with only "error") raises, as a failure before the first event does."""
    if event == "error" or data.startswith('{"error"'):
        try:
            doc = v2_json.loads(data)
        except InvalidInput:
            doc = None
        if event == "error" or (isinstance(doc, dict) and list(doc) == ["error"]):
            message = doc.get("error") if isinstance(doc, dict) else data
            if isinstance(message, dict):  # OpenAI's shape
                message = message.get("message")
            raise ServerError(f"The stream failed: {message}", 500)


def _json_event(event: str | None, data: str) -> Any:
    _event_error(event, data)
    try:
        return v2_json.loads(data, "Event data")
    except InvalidInput as exc:
        raise InvalidResponse(str(exc), 200) from exc


def _v2_event(event: str | None, data: str) -> InferResponse:
    _event_error(event, data)
    try:
        return v2_json.decode_response(data.encode("utf-8"))
    except InvalidInput as exc:
        raise InvalidResponse(str(exc), 200) from exc


def _v1_event(event: str | None, data: str) -> Any:
    """V1 streams carry what the model yielded: JSON when it parses, else the text."""
    _event_error(event, data)
    try:
        return v2_json.loads(data)
    except InvalidInput:
        return data


def _stream_status(response: httpx.Response, body: bytes) -> None:
    if not 200 <= response.status_code < 300:
        raise ServerError(_error_message(httpx.Response(response.status_code, content=body)), response.status_code)


def _ssl_context(verify: Any, cert: Any) -> Any:
    """What httpx's ``verify`` takes: True/False, or an SSLContext built from a CA path and a client cert."""
    if isinstance(verify, ssl.SSLContext):
        ctx = verify
    elif cert is None and isinstance(verify, bool):
        return verify
    elif verify is True:
        import certifi  # httpx's own trust store

        ctx = ssl.create_default_context(cafile=certifi.where())
    elif verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        path = os.fspath(verify)
        ctx = ssl.create_default_context(capath=path) if os.path.isdir(path) else ssl.create_default_context(cafile=path)
    if cert is not None:
        if isinstance(cert, (tuple, list)):
            ctx.load_cert_chain(*cert)
        else:
            ctx.load_cert_chain(os.fspath(cert))
    return ctx


def _finish(call: _Call, response: httpx.Response) -> Any:
    if call.response_headers is not None:
        call.response_headers.update(response.headers)
    return call.parse(response)


# -- the async client ---------------------------------------------------------------------------
class AsyncRESTClient(_RESTBase):
    """Async REST client (KServe's ``InferenceRESTClient``). Close it with ``await aclose()``."""

    def __init__(self, config: RESTConfig | None = None):
        super().__init__(config)
        self._client = httpx.AsyncClient(**self._client_options())

    async def _run(self, call: _Call, timeout: float | None) -> Any:
        return await self._policy.arun(lambda: self._once(call, timeout), call.retry_status)

    async def _once(self, call: _Call, timeout: float | None) -> Any:
        try:
            response = await self._client.request(
                call.method, call.url, content=call.content, headers=call.headers, timeout=self._timeout(timeout)
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _translate(exc, call) from exc
        return _finish(call, response)

    async def infer(self, base_url: str, data: InferRequest | dict, model_name: str | None = None, headers: dict | None = None,
                    response_headers: dict | None = None, is_graph_endpoint: bool = False, timeout: float | None = None) -> InferResponse | dict:
        """V2: an InferResponse; V1 (or a graph endpoint): the JSON answer as a dict. Response headers go into ``response_headers``."""
        return await self._run(self._infer(base_url, data, model_name, headers, response_headers, is_graph_endpoint), timeout)

    async def infer_stream(self, base_url: str, data: InferRequest | dict, model_name: str | None = None,
                           headers: dict | None = None, timeout: float | None = None) -> AsyncIterator[Any]:
        """Each response as the server sends it (V2: InferResponse over /infer_stream; V1: each item of a
        streaming :predict). Leaving the loop early closes the connection, which stops the model."""
        call, read = self._stream(base_url, data, model_name, headers, generate=False)
        async for item in self._events(call, read, timeout):
            yield item

    async def generate_stream(self, base_url: str, model_name: str, data: dict, headers: dict | None = None,
                              timeout: float | None = None) -> AsyncIterator[dict]:
        """Triton's generate extension: each event's JSON object."""
        call, read = self._stream(base_url, data, model_name, headers, generate=True)
        async for item in self._events(call, read, timeout):
            yield item

    async def _events(self, call: _Call, read: Callable[[str | None, str], Any], timeout: float | None) -> AsyncIterator[Any]:
        parser = SSEParser()
        try:
            async with self._client.stream(call.method, call.url, content=call.content, headers=call.headers,
                                           timeout=self._timeout(timeout)) as response:
                if not 200 <= response.status_code < 300:
                    _stream_status(response, await response.aread())
                async for line in response.aiter_lines():
                    for event, payload in parser.feed(line):
                        yield read(event, payload)
                for event, payload in parser.end():
                    yield read(event, payload)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _translate(exc, call) from exc

    async def explain(self, base_url: str, model_name: str, data: dict, headers: dict | None = None, timeout: float | None = None) -> dict:
        return await self._run(self._explain(base_url, model_name, data, headers), timeout)

    async def is_server_live(self, base_url: str, headers: dict | None = None, timeout: float | None = None) -> bool:
        return await self._run(self._server_live(base_url, headers), timeout)

    async def is_server_ready(self, base_url: str, headers: dict | None = None, timeout: float | None = None) -> bool:
        return await self._run(self._server_ready(base_url, headers), timeout)

    async def is_model_ready(self, base_url: str, model_name: str, model_version: str | None = None,
                             headers: dict | None = None, timeout: float | None = None) -> bool:
        return await self._run(self._model_ready(base_url, model_name, model_version, headers), timeout)

    async def get_server_metadata(self, base_url: str, headers: dict | None = None, timeout: float | None = None) -> dict:
        return await self._run(self._server_metadata(base_url, headers), timeout)

    async def get_model_metadata(self, base_url: str, model_name: str, model_version: str | None = None,
                                 headers: dict | None = None, timeout: float | None = None) -> dict:
        return await self._run(self._model_metadata(base_url, model_name, model_version, headers), timeout)

    async def repository_index(self, base_url: str, ready: bool = False, headers: dict | None = None, timeout: float | None = None) -> list[dict]:
        return await self._run(self._repository_index(base_url, ready, headers), timeout)

    async def load_model(self, base_url: str, model_name: str, headers: dict | None = None, timeout: float | None = None) -> None:
        await self._run(self._repository(base_url, model_name, "load", headers), timeout)

    async def unload_model(self, base_url: str, model_name: str, headers: dict | None = None, timeout: float | None = None) -> None:
        await self._run(self._repository(base_url, model_name, "unload", headers), timeout)

    async def aclose(self) -> None:
        await self._client.aclose()

    close = aclose  # KServe's name

    async def __aenter__(self) -> AsyncRESTClient:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()


# -- the sync client ----------------------------------------------------------------------------
class RESTClient(_RESTBase):
    """Blocking REST client with the same methods as :class:`AsyncRESTClient`."""

    def __init__(self, config: RESTConfig | None = None):
        super().__init__(config)
        self._client = httpx.Client(**self._client_options())

    def _run(self, call: _Call, timeout: float | None) -> Any:
        return self._policy.run(lambda: self._once(call, timeout), call.retry_status)

    def _once(self, call: _Call, timeout: float | None) -> Any:
        try:
            response = self._client.request(
                call.method, call.url, content=call.content, headers=call.headers, timeout=self._timeout(timeout)
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _translate(exc, call) from exc
        return _finish(call, response)

    def infer(self, base_url: str, data: InferRequest | dict, model_name: str | None = None, headers: dict | None = None,
              response_headers: dict | None = None, is_graph_endpoint: bool = False, timeout: float | None = None) -> InferResponse | dict:
        return self._run(self._infer(base_url, data, model_name, headers, response_headers, is_graph_endpoint), timeout)

    def infer_stream(self, base_url: str, data: InferRequest | dict, model_name: str | None = None,
                     headers: dict | None = None, timeout: float | None = None) -> Iterator[Any]:
        """As :meth:`AsyncRESTClient.infer_stream`, as a blocking iterator (close it, or leave the loop, to stop)."""
        call, read = self._stream(base_url, data, model_name, headers, generate=False)
        return self._events(call, read, timeout)

    def generate_stream(self, base_url: str, model_name: str, data: dict, headers: dict | None = None,
                        timeout: float | None = None) -> Iterator[dict]:
        call, read = self._stream(base_url, data, model_name, headers, generate=True)
        return self._events(call, read, timeout)

    def _events(self, call: _Call, read: Callable[[str | None, str], Any], timeout: float | None) -> Iterator[Any]:
        parser = SSEParser()
        try:
            with self._client.stream(call.method, call.url, content=call.content, headers=call.headers,
                                     timeout=self._timeout(timeout)) as response:
                if not 200 <= response.status_code < 300:
                    _stream_status(response, response.read())
                for line in response.iter_lines():
                    for event, payload in parser.feed(line):
                        yield read(event, payload)
                for event, payload in parser.end():
                    yield read(event, payload)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _translate(exc, call) from exc

    def explain(self, base_url: str, model_name: str, data: dict, headers: dict | None = None, timeout: float | None = None) -> dict:
        return self._run(self._explain(base_url, model_name, data, headers), timeout)

    def is_server_live(self, base_url: str, headers: dict | None = None, timeout: float | None = None) -> bool:
        return self._run(self._server_live(base_url, headers), timeout)

    def is_server_ready(self, base_url: str, headers: dict | None = None, timeout: float | None = None) -> bool:
        return self._run(self._server_ready(base_url, headers), timeout)

    def is_model_ready(self, base_url: str, model_name: str, model_version: str | None = None,
                       headers: dict | None = None, timeout: float | None = None) -> bool:
        return self._run(self._model_ready(base_url, model_name, model_version, headers), timeout)

    def get_server_metadata(self, base_url: str, headers: dict | None = None, timeout: float | None = None) -> dict:
        return self._run(self._server_metadata(base_url, headers), timeout)

    def get_model_metadata(self, base_url: str, model_name: str, model_version: str | None = None,
                           headers: dict | None = None, timeout: float | None = None) -> dict:
        return self._run(self._model_metadata(base_url, model_name, model_version, headers), timeout)

    def repository_index(self, base_url: str, ready: bool = False, headers: dict | None = None, timeout: float | None = None) -> list[dict]:
        return self._run(self._repository_index(base_url, ready, headers), timeout)

    def load_model(self, base_url: str, model_name: str, headers: dict | None = None, timeout: float | None = None) -> None:
        self._run(self._repository(base_url, model_name, "load", headers), timeout)

    def unload_model(self, base_url: str, model_name: str, headers: dict | None = None, timeout: float | None = None) -> None:
        self._run(self._repository(base_url, model_name, "unload", headers), timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RESTClient:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


__all__ = ["AsyncRESTClient", "RESTClient", "RESTConfig"]

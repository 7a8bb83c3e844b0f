"""gRPC clients for the Open Inference Protocol: ``AsyncGRPCClient`` (grpc.aio) and ``GRPCClient``.

The constructor follows KServe's ``InferenceGRPCClient``. Tensors travel as raw contents. Calls are
described once by pure builders (:class:`_Call`); grpc errors become :mod:`.errors` in one place,
:func:`_translate`. The async client opens its channel on first use, on the running loop.
"""

from __future__ import annotations

import os
from typing import Any, AsyncIterator, Callable, Iterable, Iterator, NamedTuple, Sequence

import grpc
import grpc.aio

from ..errors import InvalidInput
from ..types import InferRequest, InferResponse
from ..wire.grpc import convert
from ..wire.grpc import grpc_predict_v2_pb2 as pb
from ..wire.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from ._retry import RetryPolicy
from .errors import HTTP_FOR_GRPC, ClientError, ConnectionFailed, InvalidResponse, RequestTimeout, ServerError, TLSError

# The server sets its own limits; the client accepts whatever the server sends.
DEFAULT_CHANNEL_ARGS = (("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1))
_RETRY_STATUSES = frozenset({HTTP_FOR_GRPC["UNAVAILABLE"]})
_CONNECT_SIGNS = ("failed to connect", "connection refused", "connection reset", "socket closed", "dns resolution failed")
_TLS_SIGNS = ("ssl", "handshake", "certificate", "tls")


class _Call(NamedTuple):
    method: str
    request: Any
    parse: Callable[[Any], Any]
    retry_status: bool = True
    response_headers: dict | None = None


# -- translating grpc, the one boundary ---------------------------------------------------------
def _translate(exc: grpc.RpcError, method: str, url: str) -> ClientError:
    code = exc.code() if callable(getattr(exc, "code", None)) else None
    details = (exc.details() if callable(getattr(exc, "details", None)) else None) or str(exc)
    name = code.name if code is not None else "UNKNOWN"
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return RequestTimeout(f"No answer within the timeout for {method} at {url}", HTTP_FOR_GRPC[name], name)
    if code is grpc.StatusCode.UNAVAILABLE:
        low = details.lower()
        if any(sign in low for sign in _TLS_SIGNS):
            return TLSError(f"TLS failed for {method} at {url}: {details}", None, name)
        if any(sign in low for sign in _CONNECT_SIGNS):
            return ConnectionFailed(f"Cannot reach the server for {method} at {url}: {details}", None, name)
    return ServerError(details, HTTP_FOR_GRPC.get(name, 500), name)


def _metadata_dict(metadata: Any) -> dict[str, Any]:
    return {key: value for key, value in (metadata or ())}


def _read(path_or_bytes: str | bytes | os.PathLike | None) -> bytes | None:
    """KServe takes certificate file paths; PEM bytes work too."""
    if path_or_bytes is None or isinstance(path_or_bytes, bytes):
        return path_or_bytes
    with open(path_or_bytes, "rb") as f:
        return f.read()


def _infer_response(msg: pb.ModelInferResponse) -> InferResponse:
    try:
        return convert.response_from_proto(msg)
    except InvalidInput as exc:
        raise InvalidResponse(f"Not a valid ModelInferResponse: {exc}") from exc


def _stream_requests(requests: InferRequest | Iterable[InferRequest]) -> list[pb.ModelInferRequest]:
    items = [requests] if isinstance(requests, InferRequest) else list(requests)
    for item in items:
        if not isinstance(item, InferRequest):
            raise TypeError(f"gRPC infer_stream sends InferRequests, not {type(item).__name__}")
    return [convert.request_to_proto(item, raw=True) for item in items]


def _stream_item(msg: pb.ModelStreamInferResponse) -> InferResponse | None:
    """One streamed answer; None for the empty final marker of a streaming model; an error raises."""
    if msg.error_message:
        raise ServerError(msg.error_message, 500)
    response = msg.infer_response
    final = response.parameters.get("triton_final_response")
    if final is not None and final.bool_param and not response.outputs:
        return None
    return _infer_response(response)


class _GRPCBase:
    def __init__(
        self,
        url: str,
        use_ssl: bool = False,
        root_certificates: str | bytes | None = None,
        private_key: str | bytes | None = None,
        certificate_chain: str | bytes | None = None,
        creds: grpc.ChannelCredentials | None = None,
        channel_args: Sequence[tuple[str, Any]] | None = None,
        timeout: float = 60,
        retries: int = 3,
        backoff: float = 0.1,
        max_backoff: float = 5.0,
        headers: dict[str, str] | None = None,
        api_key: str | None = None,
    ):
        """``url`` is ``host:port``. TLS is used when ``use_ssl`` is true, certificates are given (file
        paths or PEM bytes; private key and chain make a client certificate), or ``creds`` (channel
        credentials, which win over the rest) are passed. ``timeout`` is each call's default in
        seconds; ``retries`` counts attempts after the first for connection failures and UNAVAILABLE,
        spaced by ``backoff * 2**n`` seconds (at most ``max_backoff``, with jitter). ``headers`` are
        sent as metadata on every call, under the call's own; ``api_key`` as ``authorization: Bearer <key>``."""
        self.url = url
        self.timeout = timeout
        self._headers = {k.lower(): v for k, v in (headers or {}).items()}
        if api_key:
            self._headers.setdefault("authorization", f"Bearer {api_key}")
        self._policy = RetryPolicy(retries, backoff, max_backoff, _RETRY_STATUSES)
        self._options = list(channel_args) if channel_args is not None else list(DEFAULT_CHANNEL_ARGS)
        if creds is None and (use_ssl or root_certificates or private_key or certificate_chain):
            creds = grpc.ssl_channel_credentials(_read(root_certificates), _read(private_key), _read(certificate_chain))
        self._creds = creds

    def _metadata(self, headers: dict | None) -> tuple[tuple[str, Any], ...] | None:
        merged = {**self._headers, **{str(k).lower(): v for k, v in (headers or {}).items()}}
        if not merged:
            return None
        out = []
        for key, value in merged.items():
            if key.endswith("-bin"):
                out.append((key, value if isinstance(value, bytes) else str(value).encode()))
            else:
                out.append((key, value.decode("latin-1") if isinstance(value, bytes) else str(value)))
        return tuple(out)

    def _timeout(self, timeout: float | None) -> float | None:
        return self.timeout if timeout is None else timeout

    # -- builders ------------------------------------------------------------------------------
    @staticmethod
    def _infer(request: InferRequest, response_headers: dict | None) -> _Call:
        if not isinstance(request, InferRequest):
            raise TypeError(f"gRPC infer sends an InferRequest, not {type(request).__name__}")
        return _Call("ModelInfer", convert.request_to_proto(request, raw=True), _infer_response, True, response_headers)

    @staticmethod
    def _server_live() -> _Call:
        return _Call("ServerLive", pb.ServerLiveRequest(), lambda r: r.live, False)

    @staticmethod
    def _server_ready() -> _Call:
        return _Call("ServerReady", pb.ServerReadyRequest(), lambda r: r.ready, False)

    @staticmethod
    def _model_ready(name: str, version: str | None) -> _Call:
        return _Call("ModelReady", pb.ModelReadyRequest(name=name, version=version or ""), lambda r: r.ready, False)

    @staticmethod
    def _server_metadata() -> _Call:
        return _Call("ServerMetadata", pb.ServerMetadataRequest(), convert.server_metadata_from_proto)

    @staticmethod
    def _model_metadata(name: str, version: str | None) -> _Call:
        return _Call("ModelMetadata", pb.ModelMetadataRequest(name=name, version=version or ""), convert.model_metadata_from_proto)

    @staticmethod
    def _repository_index(ready: bool) -> _Call:
        return _Call("RepositoryIndex", pb.RepositoryIndexRequest(ready=ready), convert.repository_index_from_proto)

    @staticmethod
    def _load(name: str) -> _Call:
        return _Call("RepositoryModelLoad", pb.RepositoryModelLoadRequest(model_name=name), lambda r: None)

    @staticmethod
    def _unload(name: str) -> _Call:
        return _Call("RepositoryModelUnload", pb.RepositoryModelUnloadRequest(model_name=name), lambda r: None)


# -- the async client ---------------------------------------------------------------------------
class AsyncGRPCClient(_GRPCBase):
    """Async gRPC client (KServe's ``InferenceGRPCClient``). Close it with ``await close()``."""

    _channel: grpc.aio.Channel | None = None
    _stub: GRPCInferenceServiceStub | None = None

    def _get_stub(self) -> GRPCInferenceServiceStub:
        if self._stub is None:
            if self._creds is not None:
                self._channel = grpc.aio.secure_channel(self.url, self._creds, options=self._options)
            else:
                self._channel = grpc.aio.insecure_channel(self.url, options=self._options)
            self._stub = GRPCInferenceServiceStub(self._channel)
        return self._stub

    async def _run(self, call: _Call, headers: dict | None, timeout: float | None) -> Any:
        metadata, seconds = self._metadata(headers), self._timeout(timeout)
        return await self._policy.arun(lambda: self._once(call, metadata, seconds), call.retry_status)

    async def _once(self, call: _Call, metadata: Any, timeout: float | None) -> Any:
        method = getattr(self._get_stub(), call.method)
        try:
            rpc = method(call.request, timeout=timeout, metadata=metadata)
            response = await rpc
            if call.response_headers is not None:
                call.response_headers.update(_metadata_dict(await rpc.initial_metadata()))
                call.response_headers.update(_metadata_dict(await rpc.trailing_metadata()))
        except grpc.RpcError as exc:
            raise _translate(exc, call.method, self.url) from exc
        return call.parse(response)

    async def infer(self, infer_request: InferRequest, headers: dict | None = None, timeout: float | None = None,
                    response_headers: dict | None = None) -> InferResponse:
        """ModelInfer; the server's response metadata (e.g. a model's response headers) goes into ``response_headers``."""
        return await self._run(self._infer(infer_request, response_headers), headers, timeout)

    async def infer_stream(self, requests: InferRequest | Iterable[InferRequest], headers: dict | None = None,
                           timeout: float | None = None) -> AsyncIterator[InferResponse]:
        """ModelStreamInfer: sends the request(s), yields every response (a streaming model answers each
        request with many). A failed request raises :class:`ServerError`; leaving the loop cancels the call."""
        messages = _stream_requests(requests)
        call = self._get_stub().ModelStreamInfer(iter(messages), timeout=self._timeout(timeout), metadata=self._metadata(headers))
        try:
            async for msg in call:
                item = _stream_item(msg)
                if item is not None:
                    yield item
        except grpc.RpcError as exc:
            raise _translate(exc, "ModelStreamInfer", self.url) from exc
        finally:
            call.cancel()

    async def is_server_live(self, headers: dict | None = None, timeout: float | None = None) -> bool:
        return await self._run(self._server_live(), headers, timeout)

    async def is_server_ready(self, headers: dict | None = None, timeout: float | None = None) -> bool:
        return await self._run(self._server_ready(), headers, timeout)

    async def is_model_ready(self, model_name: str, model_version: str | None = None, headers: dict | None = None,
                             timeout: float | None = None) -> bool:
        return await self._run(self._model_ready(model_name, model_version), headers, timeout)

    async def get_server_metadata(self, headers: dict | None = None, timeout: float | None = None) -> dict:
        return await self._run(self._server_metadata(), headers, timeout)

    async def get_model_metadata(self, model_name: str, model_version: str | None = None, headers: dict | None = None,
                                 timeout: float | None = None) -> dict:
        return await self._run(self._model_metadata(model_name, model_version), headers, timeout)

    async def repository_index(self, ready: bool = False, headers: dict | None = None, timeout: float | None = None) -> list[dict]:
        return await self._run(self._repository_index(ready), headers, timeout)

    async def load_model(self, model_name: str, headers: dict | None = None, timeout: float | None = None) -> None:
        await self._run(self._load(model_name), headers, timeout)

    async def unload_model(self, model_name: str, headers: dict | None = None, timeout: float | None = None) -> None:
        await self._run(self._unload(model_name), headers, timeout)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None

    aclose = close

    async def __aenter__(self) -> AsyncGRPCClient:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()


# -- the sync client ----------------------------------------------------------------------------
class GRPCClient(_GRPCBase):
    """Blocking gRPC client with the same methods as :class:`AsyncGRPCClient`."""

    def __init__(self, url: str, *args: Any, **kwargs: Any):
        super().__init__(url, *args, **kwargs)
        if self._creds is not None:
            self._channel = grpc.secure_channel(url, self._creds, options=self._options)
        else:
            self._channel = grpc.insecure_channel(url, options=self._options)
        self._stub = GRPCInferenceServiceStub(self._channel)

    def _run(self, call: _Call, headers: dict | None, timeout: float | None) -> Any:
        metadata, seconds = self._metadata(headers), self._timeout(timeout)
        return self._policy.run(lambda: self._once(call, metadata, seconds), call.retry_status)

    def _once(self, call: _Call, metadata: Any, timeout: float | None) -> Any:
        method = getattr(self._stub, call.method)
        try:
            response, rpc = method.with_call(call.request, timeout=timeout, metadata=metadata)
        except grpc.RpcError as exc:
            raise _translate(exc, call.method, self.url) from exc
        if call.response_headers is not None:
            call.response_headers.update(_metadata_dict(rpc.initial_metadata()))
            call.response_headers.update(_metadata_dict(rpc.trailing_metadata()))
        return call.parse(response)

    def infer(self, infer_request: InferRequest, headers: dict | None = None, timeout: float | None = None,
              response_headers: dict | None = None) -> InferResponse:
        return self._run(self._infer(infer_request, response_headers), headers, timeout)

    def infer_stream(self, requests: InferRequest | Iterable[InferRequest], headers: dict | None = None,
                     timeout: float | None = None) -> Iterator[InferResponse]:
        """As :meth:`AsyncGRPCClient.infer_stream`, as a blocking iterator."""
        messages = _stream_requests(requests)
        call = self._stub.ModelStreamInfer(iter(messages), timeout=self._timeout(timeout), metadata=self._metadata(headers))
        try:
            for msg in call:
                item = _stream_item(msg)
                if item is not None:
                    yield item
        except grpc.RpcError as exc:
            raise _translate(exc, "ModelStreamInfer", self.url) from exc
        finally:
            call.cancel()

    def is_server_live(self, headers: dict | None = None, timeout: float | None = None) -> bool:
        return self._run(self._server_live(), headers, timeout)

    def is_server_ready(self, headers: dict | None = None, timeout: float | None = None) -> bool:
        return self._run(self._server_ready(), headers, timeout)

    def is_model_ready(self, model_name: str, model_version: str | None = None, headers: dict | None = None,
                       timeout: float | None = None) -> bool:
        return self._run(self._model_ready(model_name, model_version), headers, timeout)

    def get_server_metadata(self, headers: dict | None = None, timeout: float | None = None) -> dict:
        return self._run(self._server_metadata(), headers, timeout)

    def get_model_metadata(self, model_name: str, model_version: str | None = None, headers: dict | None = None,
                           timeout: float | None = None) -> dict:
        return self._run(self._model_metadata(model_name, model_version), headers, timeout)

    def repository_index(self, ready: bool = False, headers: dict | None = None, timeout: float | None = None) -> list[dict]:
        return self._run(self._repository_index(ready), headers, timeout)

    def load_model(self, model_name: str, headers: dict | None = None, timeout: float | None = None) -> None:
        self._run(self._load(model_name), headers, timeout)

    def unload_model(self, model_name: str, headers: dict | None = None, timeout: float | None = None) -> None:
        self._run(self._unload(model_name), headers, timeout)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> GRPCClient:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


__all__ = ["AsyncGRPCClient", "GRPCClient"]

"""The gRPC door: decode → data plane → encode, nothing else.

Errors are not handled here: they propagate to the one wrapper of every handler (:mod:`.calls`),
which maps them with :mod:`.errors`; except in ModelStreamInfer, where a failed request answers
``error_message`` and the stream goes on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc.aio

from ... import shm
from ...controls.auth import may_see
from ...dataplane.plane import DataPlane
from ...observability.context import REQUEST_ID_HEADER, begin
from ...wire.grpc import convert
from ...wire.grpc import grpc_predict_v2_pb2 as pb
from ...wire.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceServicer
from ...wire.grpc import model_repository_pb2 as mr
from ...wire.grpc import model_repository_pb2_grpc as mr_grpc
from .errors import code_for, status_for
from .shared_memory import SharedMemoryMethods

Context = grpc.aio.ServicerContext

_LIVE = pb.ServerLiveResponse(live=True)
_LOADED = pb.RepositoryModelLoadResponse()
_UNLOADED = pb.RepositoryModelUnloadResponse()
_MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
# Metadata keys that belong to the HTTP/2 and gRPC framing, never to a model.
_RESERVED = ("content-type", "te", "user-agent")


class InferenceServicer(SharedMemoryMethods, GRPCInferenceServiceServicer):
    def __init__(self, dataplane: DataPlane, edge: Any = None):
        self.dataplane = dataplane
        # observability.edge.RequestEdge: request id, access log, tracing (None: none of them).
        self.edge = edge
        # True once ModelInfer is registered with rawcodec's serializer (server.add_inference_service);
        # under the generated registration it must answer plain protobuf messages.
        self.raw_buffers = False

    # -- health and metadata ----------------------------------------------------------------
    async def ServerLive(self, request: pb.ServerLiveRequest, context: Context) -> pb.ServerLiveResponse:
        return _LIVE if self.dataplane.live() else pb.ServerLiveResponse(live=False)

    async def ServerReady(self, request: pb.ServerReadyRequest, context: Context) -> pb.ServerReadyResponse:
        doc = self.dataplane.readiness()
        if not doc["ready"] and doc.get("reason"):  # the message has only "ready": the reason rides in trailing metadata
            context.set_trailing_metadata((("x-modelport-not-ready", doc["reason"].encode("ascii", "replace").decode()[:1000]),))
        return pb.ServerReadyResponse(ready=doc["ready"])

    async def ModelReady(self, request: pb.ModelReadyRequest, context: Context) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=self.dataplane.model_ready(request.name, request.version or None))

    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context: Context) -> pb.ServerMetadataResponse:
        return convert.server_metadata_to_proto(self.dataplane.server_metadata())

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Context) -> pb.ModelMetadataResponse:
        return convert.model_metadata_to_proto(self.dataplane.model_metadata(request.name, request.version or None))

    # -- inference ---------------------------------------------------------------------------
    async def ModelInfer(self, request: pb.ModelInferRequest, context: Context) -> pb.ModelInferResponse:
        headers = _headers(context)
        edge = self.edge
        if edge is None:
            return await self._infer(request, headers, context, ())
        info = edge.begin_grpc(headers, _MODEL_INFER)
        code, size = "OK", 0
        try:
            answer = await self._infer(request, headers, context, edge.grpc_metadata(info))
            size = answer.ByteSize() if edge.access_log else 0
            return answer
        except BaseException as exc:
            code = code_for(exc).name if isinstance(exc, Exception) else "CANCELLED"
            context.set_trailing_metadata(edge.grpc_metadata(info))
            raise
        finally:
            # The peer only for the access log: context.peer() builds a string in grpc's core per call.
            edge.end_grpc(info, _MODEL_INFER, code, context.peer() if edge.access_log else "-", size)

    async def _infer(self, request: pb.ModelInferRequest, headers: dict, context: Context, metadata: tuple) -> pb.ModelInferResponse:
        raw = convert.uses_raw(request)
        self.dataplane.check_model(request.model_name, request.model_version or None)  # before decoding
        infer_request = convert.request_from_proto(request)
        shared = shm.bind(self.dataplane.shared_memory, infer_request, lambda: shm.is_local_peer(context.peer()))
        response, response_headers = await self.dataplane.infer(infer_request, headers)
        if response_headers:
            context.set_trailing_metadata(_metadata(response_headers) + metadata)
        elif metadata:
            context.set_trailing_metadata(metadata)
        if shared is not None:  # outputs written to shared memory; answered raw, as tritonclient reads them
            return convert.response_to_proto(shared.write(response), True, buffers=self.raw_buffers)
        return convert.response_to_proto(response, raw, buffers=self.raw_buffers)

    async def ModelStreamInfer(
        self, request_iterator: AsyncIterator[pb.ModelInferRequest], context: Context
    ) -> AsyncIterator[pb.ModelStreamInferResponse]:
        """Many requests per stream, answered in order; a streaming model answers with many responses
        (Triton's decoupled mode). Every response carries ``triton_final_response``: a model that does
        not stream sends one response flagged final; one that streams sends its items flagged not
        final, then an empty response (id and model only) flagged final. A failure is one response
        with ``error_message``, and it ends that request only."""
        headers = _headers(context)
        if self.edge is not None:  # the stream's request id (taken or made) in its log lines
            begin(headers.get(REQUEST_ID_HEADER), "grpc")
        async for request in request_iterator:
            stream = None
            try:
                self.dataplane.check_model(request.model_name, request.model_version or None)
                infer_request = convert.request_from_proto(request)
                shm.refuse(infer_request, "ModelStreamInfer")
                stream = await self.dataplane.infer_stream(infer_request, headers)
                raw = convert.uses_raw(request)
                async for response in stream:
                    answer = convert.response_to_proto(response, raw)
                    answer.parameters[FINAL].bool_param = not stream.streaming
                    yield pb.ModelStreamInferResponse(infer_response=answer)
                if stream.streaming:
                    yield pb.ModelStreamInferResponse(infer_response=_named(request, final=True))
            except Exception as exc:  # noqa: BLE001 - one bad request must not end the stream
                _, message = status_for(exc, "ModelStreamInfer", request)
                # Name the request so a client with several in flight can match the error.
                yield pb.ModelStreamInferResponse(error_message=message, infer_response=_named(request))
            finally:
                if stream is not None:
                    await stream.aclose()  # the client cancelled: stop the generator now

    # -- statistics extension ----------------------------------------------------------------
    async def ModelStatistics(self, request: pb.ModelStatisticsRequest, context: Context) -> pb.ModelStatisticsResponse:
        stats = self.dataplane.model_statistics(request.name or None, request.version or None)
        if not request.name:  # every model: the caller's only (a key limited to some models)
            stats = [m for m in stats if may_see(m["name"])]
        return convert.statistics_to_proto(stats)

    # -- repository extension ----------------------------------------------------------------
    async def RepositoryIndex(self, request: pb.RepositoryIndexRequest, context: Context) -> pb.RepositoryIndexResponse:
        index = self.dataplane.repository_index(ready_only=request.ready)
        return convert.repository_index_to_proto([m for m in index if may_see(m["name"])])

    async def RepositoryModelLoad(
        self, request: pb.RepositoryModelLoadRequest, context: Context
    ) -> pb.RepositoryModelLoadResponse:
        # Parameters (Triton's config override, files) are not supported and, as over REST, ignored.
        await self.dataplane.load(request.model_name)
        return _LOADED

    async def RepositoryModelUnload(
        self, request: pb.RepositoryModelUnloadRequest, context: Context
    ) -> pb.RepositoryModelUnloadResponse:
        await self.dataplane.unload(request.model_name)
        return _UNLOADED


FINAL = "triton_final_response"


def _named(request: pb.ModelInferRequest, final: bool | None = None) -> pb.ModelInferResponse:
    response = pb.ModelInferResponse(model_name=request.model_name, model_version=request.model_version, id=request.id)
    if final is not None:
        response.parameters[FINAL].bool_param = final
    return response


def _headers(context: Context) -> dict[str, str]:
    """Request metadata as the headers dict the data plane and models see (lower-case keys).

    A gRPC deadline becomes the data plane's ``x-request-timeout``, so the server stops waiting for
    a model once the client has given up, as it does for REST."""
    headers = {}
    for key, value in context.invocation_metadata() or ():  # a loop: no function object per call (3.11)
        headers[key.lower()] = value if isinstance(value, str) else value.decode("latin-1")
    remaining = context.time_remaining()
    if remaining is not None and remaining > 0:
        asked = headers.get("x-request-timeout")
        try:
            remaining = min(remaining, float(asked)) if asked is not None else remaining
        except ValueError:
            pass  # the data plane reports the bad header
        else:
            headers["x-request-timeout"] = repr(remaining)
    return headers


def _metadata(headers: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A model's response headers as gRPC trailing metadata."""
    out = []
    for key, value in headers.items():
        key = str(key).lower()
        if key.startswith((":", "grpc-")) or key in _RESERVED:
            continue
        if key.endswith("-bin"):
            value = value if isinstance(value, bytes) else str(value).encode()
        else:
            value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        out.append((key, value))
    return tuple(out)


__all__ = ["InferenceServicer"]


class ModelRepositoryServicer(mr_grpc.ModelRepositoryServiceServicer):
    """MLServer's own repository service (inference.model_repository), over the same data plane."""

    def __init__(self, dataplane: DataPlane):
        self.dataplane = dataplane

    async def RepositoryIndex(self, request: mr.RepositoryIndexRequest, context: Context) -> mr.RepositoryIndexResponse:
        models = [
            mr.RepositoryIndexResponse.ModelIndex(
                name=m["name"], version=m.get("version") or "", state=m["state"], reason=m.get("reason") or ""
            )
            for m in self.dataplane.repository_index(ready_only=request.ready)
            if may_see(m["name"])
        ]
        return mr.RepositoryIndexResponse(models=models)

    async def RepositoryModelLoad(self, request: mr.RepositoryModelLoadRequest, context: Context) -> mr.RepositoryModelLoadResponse:
        await self.dataplane.load(request.model_name)
        return mr.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(
        self, request: mr.RepositoryModelUnloadRequest, context: Context
    ) -> mr.RepositoryModelUnloadResponse:
        await self.dataplane.unload(request.model_name)
        return mr.RepositoryModelUnloadResponse()

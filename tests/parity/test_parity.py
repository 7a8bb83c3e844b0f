"""The same scenarios over REST and gRPC: the same answers, the same error codes, the same messages."""

from __future__ import annotations

import asyncio
import re

import grpc
import grpc.aio
import numpy as np
import pytest

from modelport import InferInput, InferRequest, Model, RequestedOutput
from modelport.wire import v2_json
from modelport.wire.grpc import convert
from modelport.wire.grpc import grpc_predict_v2_pb2 as pb
from modelport.wire.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

from ..fixture_models import AsyncSlowModel, BrokenLoadModel, DeclaredModel, EchoModel, FailingModel, PickyModel, SumModel

# The one correspondence both doors must keep.
HTTP_TO_GRPC = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


class NoPredict(Model):
    def __init__(self, name="nopredict"):
        super().__init__(name)
        self.ready = True


class Doors:
    """One server, a REST client and a gRPC stub, and helpers that run a scenario through each."""

    def __init__(self, server, http, stub):
        self.server, self.http, self.stub = server, http, stub

    async def rest_infer(self, request: InferRequest, headers=None):
        body, json_len = v2_json.encode_request(request)
        version = f"/versions/{request.model_version}" if request.model_version else ""
        h = dict(headers or {})
        if json_len is not None:
            h["Inference-Header-Content-Length"] = str(json_len)
        r = await self.http.post(f"/v2/models/{request.model_name}{version}/infer", content=body, headers=h)
        if r.status_code != 200:
            return r.status_code, r.json()["error"]
        return 200, v2_json.decode_response(r.content, r.headers.get("inference-header-content-length") and int(r.headers["inference-header-content-length"]))

    async def grpc_infer(self, request: InferRequest, headers=None, raw=False):
        msg = convert.request_to_proto(request, raw=raw)
        try:
            reply = await self.stub.ModelInfer(msg, metadata=tuple((headers or {}).items()))
        except grpc.aio.AioRpcError as exc:
            return exc.code(), exc.details()
        return grpc.StatusCode.OK, convert.response_from_proto(reply)

    async def both(self, request: InferRequest, headers=None):
        rest = await self.rest_infer(request, headers)
        grpc_typed = await self.grpc_infer(request, headers, raw=False)
        grpc_raw = await self.grpc_infer(request, headers, raw=True)
        return rest, grpc_typed, grpc_raw


@pytest.fixture
async def doors(serve):
    models = [SumModel("sum"), EchoModel(), DeclaredModel(), FailingModel(), PickyModel(), NoPredict(),
              BrokenLoadModel("broken"), AsyncSlowModel("aslow", delay=0.5)]
    models[-1].max_queue_size = 1
    server, http = await serve(models, enable_grpc=True)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield Doors(server, http, pb_grpc.GRPCInferenceServiceStub(channel))
    await channel.close()


def tensor(name, array, datatype=None):
    from modelport.types import from_np_dtype

    t = InferInput(name, list(array.shape), datatype or from_np_dtype(array.dtype))
    t.set_data_from_numpy(array)
    return t


async def test_health_and_metadata_agree(doors):
    live = (await doors.http.get("/v2/health/live")).status_code == 200
    assert live == (await doors.stub.ServerLive(pb.ServerLiveRequest())).live
    # The server is not ready (one model failed to load): both doors say so.
    assert (await doors.http.get("/v2/health/ready")).status_code == 503
    assert (await doors.stub.ServerReady(pb.ServerReadyRequest())).ready is False
    rest_meta = (await doors.http.get("/v2")).json()
    grpc_meta = convert.server_metadata_from_proto(await doors.stub.ServerMetadata(pb.ServerMetadataRequest()))
    assert rest_meta == grpc_meta
    rest_model = (await doors.http.get("/v2/models/declared")).json()
    grpc_model = convert.model_metadata_from_proto(await doors.stub.ModelMetadata(pb.ModelMetadataRequest(name="declared")))
    assert rest_model == grpc_model
    for name, ready in (("sum", True), ("broken", False)):
        assert ((await doors.http.get(f"/v2/models/{name}/ready")).status_code == 200) is ready
        assert (await doors.stub.ModelReady(pb.ModelReadyRequest(name=name))).ready is ready


@pytest.mark.parametrize("datatype", ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
                                      "FP16", "FP32", "FP64", "BYTES"])
async def test_infer_agrees_for_every_datatype(doors, datatype):
    from modelport.types import to_np_dtype

    if datatype == "BYTES":
        array = np.array([b"a", b"bc", b""], dtype=object).reshape(3, 1)
    else:
        array = np.arange(3).reshape(3, 1).astype(to_np_dtype(datatype))
    request = InferRequest("echo", [tensor("t", array, datatype)], request_id="p-1", parameters={"mode": "x", "k": 2})
    if datatype == "FP16":
        # FP16 has no typed gRPC contents field: raw only.
        results = [await doors.rest_infer(request), await doors.grpc_infer(request, raw=True)]
    else:
        results = list(await doors.both(request))
    for status, response in results:
        assert status in (200, grpc.StatusCode.OK), response
        assert response.id == "p-1" and response.model_name == "echo"
        assert response.parameters == {"mode": "x", "k": 2}
        out = response.get_output_by_name("t")
        assert out.datatype == datatype and out.shape == [3, 1]
        np.testing.assert_array_equal(out.as_numpy(), array)


async def test_requested_outputs_and_versions_agree(doors):
    request = InferRequest("echo", [tensor("a", np.ones((1, 2), np.float32)), tensor("b", np.zeros((1, 2), np.int64))],
                           request_outputs=[RequestedOutput("b")])
    for status, response in await doors.both(request):
        assert [o.name for o in response.outputs] == ["b"]
    request = InferRequest("sum", [tensor("x", np.array([[1.0, 2.0]], np.float32))])
    for status, response in await doors.both(request):
        np.testing.assert_array_equal(response.outputs[0].as_numpy(), [3.0])


def errors_agree(results):
    # Unexpected failures carry a per-request id to quote; the rest of the message must agree.
    (rest_status, rest_message), (grpc_status, grpc_message), (raw_status, raw_message) = (
        (status, re.sub(r"\(request id [^)]*\)", "(request id)", message)) for status, message in results
    )
    assert HTTP_TO_GRPC[rest_status] == grpc_status == raw_status, results
    assert rest_message == grpc_message == raw_message, results
    return rest_status, rest_message


ERROR_SCENARIOS = {
    "unknown model": (InferRequest("nope", [tensor("x", np.ones((1, 1), np.float32))]), 404, "nope"),
    "unknown version": (InferRequest("sum", [tensor("x", np.ones((1, 1), np.float32))], model_version="7"), 404, "version 7"),
    "model not ready": (InferRequest("broken", [tensor("x", np.ones((1, 1), np.float32))]), 503, "weights.bin"),
    "wrong datatype": (InferRequest("declared", [tensor("x", np.ones((1, 3), np.int32))]), 400, "datatype"),
    "wrong shape": (InferRequest("declared", [tensor("x", np.ones((1, 2), np.float32))]), 400, "shape"),
    "unknown input": (InferRequest("declared", [tensor("y", np.ones((1, 3), np.float32))]), 400, "'y'"),
    "unknown output": (InferRequest("declared", [tensor("x", np.ones((1, 3), np.float32))], request_outputs=[RequestedOutput("zz")]), 400, "zz"),
    "model says invalid": (InferRequest("picky", [tensor("x", np.ones((1, 1), np.float32))]), 400, "picky"),
    "model raises": (InferRequest("failing", [tensor("x", np.ones((1, 1), np.float32))]), 500, "Model failing failed while serving the request; see the server log"),
    "not implemented": (InferRequest("nopredict", [tensor("x", np.ones((1, 1), np.float32))]), 501, "predict"),
}


@pytest.mark.parametrize("scenario", list(ERROR_SCENARIOS))
async def test_errors_agree(doors, scenario):
    request, status, text = ERROR_SCENARIOS[scenario]
    got_status, message = errors_agree(await doors.both(request))
    assert got_status == status and text in message
    assert "Traceback" not in message


async def test_deadline_agrees(doors):
    request = InferRequest("aslow", [tensor("x", np.ones((1, 1), np.float32))])
    results = await doors.both(request, headers={"x-request-timeout": "0.05"})
    status, message = errors_agree(results)
    assert status == 504 and "deadline" in message
    # A native gRPC deadline is honoured by the server too.
    await asyncio.sleep(0.6)  # let the abandoned calls drain (max_queue_size is 1)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await doors.stub.ModelInfer(convert.request_to_proto(request), timeout=0.05)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_overload_agrees(doors):
    request = InferRequest("aslow", [tensor("x", np.ones((1, 1), np.float32))])
    busy = asyncio.ensure_future(doors.rest_infer(request))
    await asyncio.sleep(0.1)
    rest = await doors.rest_infer(request)
    grpc_typed = await doors.grpc_infer(request)
    grpc_raw = await doors.grpc_infer(request, raw=True)
    status, message = errors_agree((rest, grpc_typed, grpc_raw))
    assert status == 429 and "max_queue_size" in message
    assert (await busy)[0] == 200


async def test_repository_agrees(doors):
    rest = (await doors.http.post("/v2/repository/index")).json()
    grpc_index = convert.repository_index_from_proto(await doors.stub.RepositoryIndex(pb.RepositoryIndexRequest()))
    assert rest == grpc_index
    await doors.stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="sum"))
    # Unloaded but known: not ready (as Triton answers), not "not found".
    r = await doors.http.get("/v2/models/sum/ready")
    assert r.status_code == 503 and r.json() == {"name": "sum", "ready": False}
    assert (await doors.stub.ModelReady(pb.ModelReadyRequest(name="sum"))).ready is False
    r = await doors.http.post("/v2/repository/models/sum/load")
    assert r.status_code == 200
    assert (await doors.stub.ModelReady(pb.ModelReadyRequest(name="sum"))).ready is True
    # Unknown model: the same code and message through both doors.
    r = await doors.http.post("/v2/repository/models/nope/unload")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await doors.stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="nope"))
    assert HTTP_TO_GRPC[r.status_code] == info.value.code() and r.json()["error"] == info.value.details()

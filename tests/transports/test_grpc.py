"""The gRPC door on a real server (port 0) with a real grpc.aio client: every RPC, every error code,
streams, limits, health, graceful stop, and the server still serving after each error."""

from __future__ import annotations

import asyncio
import logging

import grpc
import grpc.aio
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelport import InferenceError, Model
from modelport.wire.grpc import convert
from modelport.wire.grpc import grpc_predict_v2_pb2 as pb
from modelport.wire.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from ..fixture_models import (
    BrokenLoadModel,
    DeclaredModel,
    EchoModel,
    FailingModel,
    HeadersModel,
    PickyModel,
    SlowModel,
    SumModel,
)
from ..grpc_helpers import infer_request, write_model
from ..helpers import make_server


class TeapotModel(Model):
    """Chooses its own HTTP status, which the gRPC door must honour as REST does."""

    def __init__(self, name="teapot"):
        super().__init__(name)
        self.ready = True

    def predict(self, payload, headers=None):
        raise InferenceError("try again later", status=503)


class Client:
    """A grpc.aio channel to a started server and the stubs the tests call."""

    def __init__(self, server):
        self.server = server
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        self.stub = GRPCInferenceServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    async def infer(self, model: str, *arrays, **fields) -> pb.ModelInferResponse:
        return await self.stub.ModelInfer(infer_request(model, *arrays, **fields))

    async def fails(self, call, code: grpc.StatusCode) -> str:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() == code, info.value.details()
        return info.value.details()

    async def assert_still_serving(self) -> None:
        response = await self.infer("sum", ("x", "FP32", np.array([[1, 2]], np.float32)))
        np.testing.assert_array_equal(convert.response_from_proto(response).outputs[0].as_numpy(), [3])


@pytest.fixture
async def serve_grpc():
    """serve_grpc(models, **settings) -> Client for a fresh server; stopped after the test."""
    started: list[Client] = []

    async def _serve(models=(), **settings) -> Client:
        server = make_server(enable_grpc=True, **settings)
        await server.start_async(list(models))
        client = Client(server)
        started.append(client)
        return client

    yield _serve
    for client in started:
        await client.channel.close()
        await client.server.stop(grace_period=2)


@pytest.fixture
async def client(serve_grpc) -> Client:
    return await serve_grpc(
        [
            SumModel("sum"),
            EchoModel(),
            FailingModel(),
            PickyModel(),
            HeadersModel(),
            DeclaredModel(),
            TeapotModel(),
            _ready(Model("bare")),
        ]
    )


def _ready(model: Model) -> Model:
    model.ready = True
    return model


# -- health and metadata ----------------------------------------------------------------------------


async def test_live_ready_and_metadata(client):
    assert (await client.stub.ServerLive(pb.ServerLiveRequest())).live is True
    assert (await client.stub.ServerReady(pb.ServerReadyRequest())).ready is True
    meta = convert.server_metadata_from_proto(await client.stub.ServerMetadata(pb.ServerMetadataRequest()))
    assert meta["name"] == "modelport" and meta["version"] and "model_repository" in meta["extensions"]
    assert (await client.stub.ModelReady(pb.ModelReadyRequest(name="sum"))).ready is True
    model = convert.model_metadata_from_proto(await client.stub.ModelMetadata(pb.ModelMetadataRequest(name="declared")))
    assert model["name"] == "declared"
    assert model["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}]
    assert model["outputs"] == [{"name": "output-0", "datatype": "FP32", "shape": [-1]}]


async def test_unknown_model_is_not_found_everywhere(client):
    details = await client.fails(client.stub.ModelReady(pb.ModelReadyRequest(name="nope")), grpc.StatusCode.NOT_FOUND)
    assert details == "Model nope not found"
    await client.fails(client.stub.ModelMetadata(pb.ModelMetadataRequest(name="nope")), grpc.StatusCode.NOT_FOUND)
    await client.fails(client.infer("nope", ("x", "FP32", np.ones(1, np.float32))), grpc.StatusCode.NOT_FOUND)
    await client.assert_still_serving()


async def test_health_service(client):
    for service in ("", "inference.GRPCInferenceService"):
        reply = await client.health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    await client.fails(client.health.Check(health_pb2.HealthCheckRequest(service="other")), grpc.StatusCode.NOT_FOUND)


# -- inference ------------------------------------------------------------------------------------


async def test_infer_raw_echoes_id_and_version(client):
    response = await client.infer("sum", ("x", "FP32", np.array([[1, 2], [3, 4]], np.float32)), id="req-7")
    assert (response.model_name, response.id) == ("sum", "req-7")
    assert len(response.raw_output_contents) == 1  # a raw request gets a raw answer
    out = convert.response_from_proto(response).outputs[0]
    np.testing.assert_array_equal(out.as_numpy(), np.array([3, 7], np.float32))


async def test_infer_typed_contents_answer_typed(client):
    response = await client.infer("sum", ("x", "INT64", np.array([[1, 2], [3, 4]])), raw=False)
    assert not response.raw_output_contents
    assert list(response.outputs[0].contents.int64_contents) == [3, 7]


ECHO = {
    "BOOL": np.array([[True, False]]),
    "UINT8": np.array([[1, 255]], np.uint8),
    "UINT16": np.array([[1, 65535]], np.uint16),
    "UINT32": np.array([[1, 2**32 - 1]], np.uint32),
    "UINT64": np.array([[1, 2**64 - 1]], np.uint64),
    "INT8": np.array([[-128, 127]], np.int8),
    "INT16": np.array([[-1, 2]], np.int16),
    "INT32": np.array([[-1, 2]], np.int32),
    "INT64": np.array([[-(2**63), 2**63 - 1]], np.int64),
    "FP16": np.array([[0.5, -2]], np.float16),
    "FP32": np.array([[0.5, -2]], np.float32),
    "FP64": np.array([[0.1, -2]], np.float64),
    "BYTES": np.array([[b"a", b"\xff\x00"]], dtype=object),
}


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
async def test_every_datatype_round_trips(client, raw):
    arrays = [(f"in_{dt.lower()}", dt, a) for dt, a in ECHO.items() if raw or dt not in convert.RAW_ONLY]
    response = convert.response_from_proto(
        await client.infer("echo", *arrays, raw=raw, parameters={"trace": "on", "n": 3})
    )
    assert response.parameters == {"trace": "on", "n": 3}
    assert [o.name for o in response.outputs] == [name for name, _, _ in arrays]
    for out, (name, datatype, array) in zip(response.outputs, arrays):
        assert out.datatype == datatype
        got = out.as_numpy()
        assert got.dtype == array.dtype and got.shape == array.shape
        np.testing.assert_array_equal(got, array)


async def test_requested_outputs_are_honoured(client):
    arrays = [("a", "INT32", np.array([1], np.int32)), ("b", "FP32", np.array([2], np.float32))]
    response = await client.infer("echo", *arrays, outputs=["b"])
    assert [o.name for o in response.outputs] == ["b"] and len(response.raw_output_contents) == 1
    details = await client.fails(client.infer("echo", *arrays, outputs=["c"]), grpc.StatusCode.INVALID_ARGUMENT)
    assert "Unknown requested output 'c'" in details
    await client.assert_still_serving()


async def test_request_metadata_in_response_metadata_out(client):
    call = client.stub.ModelInfer(
        infer_request("headers", ("x", "FP32", np.ones(1, np.float32))), metadata=(("x-request-tag", "t-1"),)
    )
    await call
    trailing = dict(await call.trailing_metadata())
    assert trailing["x-model-says"] == "hello" and trailing["x-echo"] == "t-1"


# -- errors: every code, and the server serves on ----------------------------------------------------


async def test_invalid_input(client):
    bad = infer_request("sum", ("x", "FP32", np.ones(2, np.float32)))
    bad.raw_input_contents[0] = b"\0" * 3
    details = await client.fails(client.stub.ModelInfer(bad), grpc.StatusCode.INVALID_ARGUMENT)
    assert details == "Input 'x': shape [2] of FP32 needs 8 bytes, but the binary data has 3"
    # Declared metadata is checked by the data plane, the same for both doors.
    details = await client.fails(
        client.infer("declared", ("x", "FP32", np.ones((1, 2), np.float32))), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "model expects [-1, 3]" in details
    # The model's own validation.
    details = await client.fails(
        client.infer("picky", ("x", "FP32", np.ones(1, np.float32))), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert details == "picky wants exactly one positive number"
    await client.assert_still_serving()


async def test_internal_error_is_logged_not_leaked(client, caplog):
    with caplog.at_level(logging.ERROR, logger="modelport"):
        details = await client.fails(
            client.infer("failing", ("x", "FP32", np.ones(1, np.float32))), grpc.StatusCode.INTERNAL
        )
    assert details.startswith("Model failing failed while serving the request; see the server log (request id ")
    assert "RuntimeError" not in details and "secret" not in details
    assert "Traceback" not in details
    assert any(r.exc_info and r.name == "modelport" for r in caplog.records)
    await client.assert_still_serving()


async def test_unimplemented(client):
    details = await client.fails(
        client.infer("bare", ("x", "FP32", np.ones(1, np.float32))), grpc.StatusCode.UNIMPLEMENTED
    )
    assert details == "Model bare does not implement predict"
    # An RPC of Triton's service that modelport does not serve.
    config = client.channel.unary_unary("/inference.GRPCInferenceService/ModelConfig")
    await client.fails(config(b""), grpc.StatusCode.UNIMPLEMENTED)
    await client.assert_still_serving()


async def test_model_chosen_status_is_honoured(client):
    details = await client.fails(
        client.infer("teapot", ("x", "FP32", np.ones(1, np.float32))), grpc.StatusCode.UNAVAILABLE
    )
    assert details == "try again later"


async def test_not_ready_model_and_server(serve_grpc):
    client = await serve_grpc([SumModel("sum"), BrokenLoadModel("broken")])
    assert (await client.stub.ServerReady(pb.ServerReadyRequest())).ready is False
    assert (await client.stub.ModelReady(pb.ModelReadyRequest(name="broken"))).ready is False
    details = await client.fails(
        client.infer("broken", ("x", "FP32", np.ones(1, np.float32))), grpc.StatusCode.UNAVAILABLE
    )
    assert "weights.bin" in details
    await client.assert_still_serving()


async def test_message_size_limit(serve_grpc):
    client = await serve_grpc([SumModel("sum")], grpc_max_message_size=4096)
    await client.fails(
        client.infer("sum", ("x", "FP32", np.ones((1, 4096), np.float32))), grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    await client.assert_still_serving()


async def test_draining_turns_readiness_false_and_still_serves(client):
    # The data plane's draining flag is readiness only; refusing new calls is the transport's drain.
    client.server.dataplane.draining = True
    assert (await client.stub.ServerReady(pb.ServerReadyRequest())).ready is False
    assert (await client.stub.ServerLive(pb.ServerLiveRequest())).live is True
    await client.infer("sum", ("x", "FP32", np.ones((1, 2), np.float32)))


# -- streaming -----------------------------------------------------------------------------------


async def test_stream_answers_each_request_and_survives_a_bad_one(client):
    call = client.stub.ModelStreamInfer()
    good = ("x", "FP32", np.array([[1, 2]], np.float32))
    requests = [
        infer_request("sum", good, id="1"),
        infer_request("nope", good, id="2"),
        infer_request("failing", good, id="3"),
        infer_request("sum", ("x", "FP32", np.array([[5, 5]], np.float32)), id="4", raw=False),
    ]
    answers = []
    for request in requests:
        await call.write(request)
        answers.append(await call.read())
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK
    assert [a.infer_response.id for a in answers] == ["1", "2", "3", "4"]
    assert [a.error_message for a in answers] == [
        "",
        "Model nope not found",
        "Model failing failed while serving the request; see the server log (request id 3)",
        "",
    ]
    assert convert.response_from_proto(answers[0].infer_response).outputs[0].as_numpy().tolist() == [3]
    assert list(answers[3].infer_response.outputs[0].contents.fp32_contents) == [10]
    await client.assert_still_serving()


# -- versions and the repository extension ---------------------------------------------------------


async def test_versions(serve_grpc, tmp_path):
    for version in ("1", "2", "10"):
        write_model(tmp_path, "sum", version)
    client = await serve_grpc(model_repository=str(tmp_path))
    x = ("x", "FP32", np.ones((1, 2), np.float32))
    for version in ("1", "2", "10"):
        assert (await client.infer("sum", x, version=version)).model_version == version
        assert (await client.stub.ModelReady(pb.ModelReadyRequest(name="sum", version=version))).ready is True
        meta = await client.stub.ModelMetadata(pb.ModelMetadataRequest(name="sum", version=version))
        assert list(meta.versions) == [version]
    assert (await client.infer("sum", x)).model_version == "10"
    details = await client.fails(client.infer("sum", x, version="3"), grpc.StatusCode.NOT_FOUND)
    assert details == "Model sum version 3 not found"
    await client.fails(client.stub.ModelReady(pb.ModelReadyRequest(name="sum", version="3")), grpc.StatusCode.NOT_FOUND)
    index = convert.repository_index_from_proto(await client.stub.RepositoryIndex(pb.RepositoryIndexRequest()))
    assert [(m["name"], m["version"], m["state"]) for m in index] == [
        ("sum", "1", "READY"),
        ("sum", "2", "READY"),
        ("sum", "10", "READY"),
    ]


async def test_repository_load_unload(serve_grpc, tmp_path):
    write_model(tmp_path, "sum")
    write_model(tmp_path, "echo2", implementation="tests.fixture_models.EchoModel")
    write_model(tmp_path, "broken", implementation="tests.fixture_models.BrokenLoadModel")
    client = await serve_grpc(model_repository=str(tmp_path))
    stub = client.stub
    index = {m.name: m for m in (await stub.RepositoryIndex(pb.RepositoryIndexRequest())).models}
    assert (
        index["sum"].state == "READY" and index["broken"].state == "FAILED" and "weights.bin" in index["broken"].reason
    )

    await stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="sum"))
    await client.fails(client.infer("sum", ("x", "FP32", np.ones((1, 2), np.float32))), grpc.StatusCode.UNAVAILABLE)
    index = {m.name: m for m in (await stub.RepositoryIndex(pb.RepositoryIndexRequest())).models}
    assert index["sum"].state == "UNAVAILABLE"
    ready = await stub.RepositoryIndex(pb.RepositoryIndexRequest(ready=True))
    assert [m.name for m in ready.models] == ["echo2"]

    # Triton's client always sends unload_dependents; parameters are accepted and not used.
    load = pb.RepositoryModelLoadRequest(model_name="sum")
    load.parameters["config"].string_param = "{}"
    await stub.RepositoryModelLoad(load)
    await client.assert_still_serving()

    details = await client.fails(
        stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="broken")), grpc.StatusCode.INTERNAL
    )
    assert "weights.bin" in details
    await client.fails(
        stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="ghost")), grpc.StatusCode.NOT_FOUND
    )
    await client.fails(
        stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="ghost")), grpc.StatusCode.NOT_FOUND
    )
    await client.assert_still_serving()


# -- lifecycle ------------------------------------------------------------------------------------


async def test_graceful_stop_lets_in_flight_requests_finish():
    slow = SlowModel("slow", delay=0.5)
    server = make_server(enable_grpc=True)
    await server.start_async([slow])
    client = Client(server)
    try:
        infer = asyncio.ensure_future(client.infer("slow", ("x", "FP32", np.ones(1, np.float32))))
        deadline = asyncio.get_running_loop().time() + 10
        while slow.active == 0:
            assert asyncio.get_running_loop().time() < deadline, "the request never reached the model"
            await asyncio.sleep(0.01)
        await server.stop(grace_period=5)
        response = await infer
        assert convert.response_from_proto(response).outputs[0].as_numpy().tolist() == [1.0]
    finally:
        await client.channel.close()


async def test_port_in_use_is_a_one_line_startup_error(serve_grpc):
    from modelport import ModelServer
    from modelport.errors import StartupError

    first = await serve_grpc([SumModel("sum")])
    second = ModelServer(http_port=0, grpc_port=first.server.grpc_port, host="127.0.0.1")
    with pytest.raises(StartupError, match=rf"^Cannot listen for gRPC on 127\.0\.0\.1:{first.server.grpc_port}: "):
        await second.start_async()
    await second.stop(grace_period=0)
    await first.assert_still_serving()

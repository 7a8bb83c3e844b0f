"""MLServer custom runtimes, written as MLServer's docs write them with only the imports changed,
served by modelport over real sockets (REST and gRPC) through the one MLModel adapter."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from modelport.wire.grpc import grpc_predict_v2_pb2 as pb
from modelport.wire.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

BODY = {
    "inputs": [
        {"name": "x", "datatype": "FP32", "shape": [2], "data": [1.5, 2]},
        {"name": "t", "datatype": "BYTES", "shape": [2], "data": ["hi", "there"]},
    ]
}


async def test_custom_runtime_over_rest(serve, runtimes_folder):
    server, client = await serve(model_repository=str(runtimes_folder), enable_grpc=False)
    r = await client.post("/v2/models/echo-runtime/infer", json={**BODY, "id": "req-1"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["model_name"] == "echo-runtime" and doc["model_version"] == "v0.1.0" and doc["id"] == "req-1"
    # get_model_uri found weights.json among the well-known names; MLModel.settings/name/version work
    assert doc["parameters"] == {"weights": "weights.json"}
    scaled, echoed = doc["outputs"]
    assert scaled == {"name": "scaled-x", "datatype": "FP64", "shape": [2, 1], "parameters": {"content_type": "np"}, "data": [3.0, 4.0]}
    assert echoed == {"name": "echo-t", "datatype": "BYTES", "shape": [2, 1], "parameters": {"content_type": "str"}, "data": ["HI", "THERE"]}
    # the version URL, and metadata from model-settings.json ("versions")
    r = await client.post("/v2/models/echo-runtime/versions/v0.1.0/infer", json=BODY)
    assert r.status_code == 200
    meta = (await client.get("/v2/models/echo-runtime")).json()
    assert meta["name"] == "echo-runtime" and meta["versions"] == ["v0.1.0"]


async def test_runtime_errors_reach_the_client_as_mlserver_sends_them(serve, runtimes_folder):
    server, client = await serve(model_repository=str(runtimes_folder), enable_grpc=True)
    r = await client.post("/v2/models/echo-runtime/infer", json={"inputs": [{"name": "fail", "datatype": "FP32", "shape": [1], "data": [1]}]})
    assert (r.status_code, r.json()) == (400, {"error": "asked to fail"})
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = GRPCInferenceServiceStub(channel)
        request = pb.ModelInferRequest(model_name="echo-runtime")
        request.inputs.add(name="fail", datatype="FP32", shape=[1]).contents.fp32_contents.append(1)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ModelInfer(request)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and info.value.details() == "asked to fail"
    # the server serves on
    assert (await client.post("/v2/models/echo-runtime/infer", json=BODY)).status_code == 200


async def test_custom_runtime_over_grpc(serve, runtimes_folder):
    server, _ = await serve(model_repository=str(runtimes_folder), enable_grpc=True)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = GRPCInferenceServiceStub(channel)
        request = pb.ModelInferRequest(model_name="echo-runtime", id="g1")
        x = request.inputs.add(name="x", datatype="FP32", shape=[2])
        x.contents.fp32_contents.extend([1.5, 2])
        t = request.inputs.add(name="t", datatype="BYTES", shape=[1])
        t.contents.bytes_contents.append(b"grpc")
        response = await stub.ModelInfer(request)
    assert response.model_name == "echo-runtime" and response.id == "g1"
    by_name = {o.name: o for o in response.outputs}
    assert list(by_name["scaled-x"].contents.fp64_contents) == [3.0, 4.0]
    assert list(by_name["echo-t"].contents.bytes_contents) == [b"GRPC"]


async def test_decode_args_runtime(serve, runtimes_folder):
    server, client = await serve(model_repository=str(runtimes_folder), enable_grpc=False)
    body = {"inputs": [
        {"name": "numbers", "datatype": "INT64", "shape": [2, 2], "data": [1, 2, 3, 4]},
        {"name": "words", "datatype": "BYTES", "shape": [3], "data": ["a", "b", "c"]},
    ]}
    r = await client.post("/v2/models/typed-runtime/infer", json=body)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    # numbers.sum(-1) + 3 words + offset 100 from parameters.extra
    assert out["name"] == "output-0" and out["shape"] == [2, 1] and out["data"] == [106, 110]
    r = await client.post("/v2/models/typed-runtime/infer", json={"inputs": [{"name": "other", "datatype": "FP32", "shape": [1], "data": [1]}]})
    assert r.status_code == 400 and "other" in r.json()["error"]


async def test_v1_request_to_a_runtime_says_what_to_send(serve, runtimes_folder):
    server, client = await serve(model_repository=str(runtimes_folder), enable_grpc=False)
    r = await client.post("/v1/models/echo-runtime:predict", json={"instances": [[1, 2]]})
    assert r.status_code == 400 and "/v2/models/echo-runtime/infer" in r.json()["error"]


async def test_runtime_unload_runs_its_unload(serve, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model-settings.json").write_text('{"name": "m", "implementation": "rt.Runtime"}')
    (folder / "rt.py").write_text(
        "from modelport.mlserver import MLModel, types\n"
        "from pathlib import Path\n"
        "class Runtime(MLModel):\n"
        "    async def predict(self, payload: types.InferenceRequest) -> types.InferenceResponse:\n"
        "        return types.InferenceResponse(model_name=self.name, outputs=[])\n"
        "    async def unload(self) -> bool:\n"
        f"        Path({str(tmp_path / 'unloaded')!r}).write_text(str(self.ready))\n"
        "        return True\n"
    )
    server, client = await serve(model_repository=str(tmp_path), enable_grpc=False)
    assert (await client.get("/v2/models/m/ready")).status_code == 200
    assert (await client.post("/v2/repository/models/m/unload")).status_code == 200
    assert (tmp_path / "unloaded").read_text() == "True"


def test_mlmodel_without_a_server():
    """The facade is usable as MLServer's is, e.g. in a runtime's own unit tests."""
    import asyncio

    from modelport.mlserver import MLModel, ModelSettings, types
    from modelport.mlserver.codecs import NumpyCodec

    class Doubler(MLModel):
        async def predict(self, payload: types.InferenceRequest) -> types.InferenceResponse:
            x = self.decode(payload.inputs[0], default_codec=NumpyCodec)
            return types.InferenceResponse(model_name=self.name, outputs=[NumpyCodec.encode_output("y", x * 2)])

    model = Doubler(ModelSettings(name="d", implementation=Doubler, parameters={"version": "3"}))
    assert (model.name, model.version, model.ready) == ("d", "3", False)
    request = types.InferenceRequest(inputs=[NumpyCodec.encode_input("x", np.array([1, 2]))])
    response = asyncio.run(model.predict(request))
    assert NumpyCodec.decode_output(response.outputs[0]).tolist() == [[2], [4]]


async def test_headers_in_and_out_as_in_mlserver(serve, tmp_path):
    """Request headers reach the runtime in parameters.headers; response parameters.headers go back as headers."""
    folder = tmp_path / "h"
    folder.mkdir()
    (folder / "model-settings.json").write_text('{"name": "h", "implementation": "hdr.Runtime"}')
    (folder / "hdr.py").write_text(
        "from modelport.mlserver import MLModel, types\n"
        "from modelport.mlserver.codecs import StringCodec\n"
        "class Runtime(MLModel):\n"
        "    async def predict(self, payload: types.InferenceRequest) -> types.InferenceResponse:\n"
        "        seen = payload.parameters.headers.get('x-tenant', '')\n"
        "        return types.InferenceResponse(model_name=self.name, outputs=[StringCodec.encode_output('t', [seen])],\n"
        "                                       parameters=types.Parameters(headers={'x-served-by': 'runtime'}))\n"
    )
    server, client = await serve(model_repository=str(tmp_path), enable_grpc=False)
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}
    r = await client.post("/v2/models/h/infer", json=body, headers={"x-tenant": "acme"})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == ["acme"] and r.headers["x-served-by"] == "runtime"
    assert "parameters" not in r.json()  # the headers left the body, as MLServer moves them out

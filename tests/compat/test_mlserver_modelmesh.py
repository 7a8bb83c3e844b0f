"""ModelMesh's MLServer ServingRuntime, run against `modelport serve`: the runtime container's
MLSERVER_* environment, an empty start, then the calls the built-in adapter makes over gRPC, and
MLServer's own inference.model_repository.ModelRepositoryService."""

from __future__ import annotations

import json

import grpc
import httpx
import pytest

from modelport.wire.grpc import grpc_predict_v2_pb2 as pb
from modelport.wire.grpc import model_repository_pb2 as mr
from modelport.wire.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from modelport.wire.grpc.model_repository_pb2_grpc import ModelRepositoryServiceStub

from ..e2e.serving import wait_ready
from .conftest import write_sklearn

ROW = [5.1, 3.5, 1.4, 0.2]  # setosa


def _stage_model(models_dir, model_id, weights):
    """What the adapter's LoadModel writes: a model dir with a generated model-settings.json."""
    folder = models_dir / model_id
    folder.mkdir(parents=True)
    settings = {"name": model_id, "implementation": "mlserver_sklearn.SKLearnModel", "parameters": {"uri": str(weights)}}
    (folder / "model-settings.json").write_text(json.dumps(settings))


def _infer(stub, model_id):
    request = pb.ModelInferRequest(model_name=model_id)  # ModelMesh writes the model id into field 1
    tensor = request.inputs.add(name="predict", datatype="FP32", shape=[1, 4])
    tensor.contents.fp32_contents.extend(ROW)
    return stub.ModelInfer(request, timeout=30)


def test_modelmesh_runtime_flow(served, tmp_path, iris):
    weights = tmp_path / "puller" / "iris" / "model.joblib"
    write_sklearn(weights, iris)
    models_dir = tmp_path / "models" / "_mlserver_models"  # not there yet: the adapter makes it
    env = {  # config/runtimes/mlserver-1.x.yaml, with port 0 and loopback for the test
        "MLSERVER_MODELS_DIR": str(models_dir), "MLSERVER_GRPC_PORT": "0", "MLSERVER_HTTP_PORT": "0",
        "MLSERVER_LOAD_MODELS_AT_STARTUP": "false", "MLSERVER_MODEL_NAME": "dummy-model-fixme",
        "MLSERVER_HOST": "127.0.0.1", "MLSERVER_GRPC_MAX_MESSAGE_LENGTH": "-1",
    }
    s = served(env=env)  # `modelport serve` with no folder argument: MLSERVER_MODELS_DIR
    url = s.http_url()
    grpc_port = s.wait_for(r"Listening for gRPC on [^:]+:(\d+)").group(1)
    wait_ready(url)
    assert httpx.post(url + "/v2/repository/index", json={}, timeout=10).json() == []
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = GRPCInferenceServiceStub(channel)
        repo = ModelRepositoryServiceStub(channel)
        # RuntimeStatus: ServerReady, RepositoryIndex{ready: true} (then unload all), ServerMetadata
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
        assert list(stub.RepositoryIndex(pb.RepositoryIndexRequest(ready=True), timeout=10).models) == []
        assert stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=10).version

        # LoadModel -> RepositoryModelLoad by name; then inference with the model id in field 1
        _stage_model(models_dir, "iris-abc123", weights)
        stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="iris-abc123"), timeout=60)
        ready = stub.RepositoryIndex(pb.RepositoryIndexRequest(ready=True), timeout=10).models
        assert [(m.name, m.state) for m in ready] == [("iris-abc123", "READY")]
        response = _infer(stub, "iris-abc123")
        assert response.model_name == "iris-abc123" and list(response.outputs[0].contents.int64_contents) == [0]

        # UnloadModel -> RepositoryModelUnload. Unloading again is a no-op here (MLServer answers NOT_FOUND;
        # the adapter counts both as done); a model never heard of is NOT_FOUND.
        stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="iris-abc123"), timeout=30)
        stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="iris-abc123"), timeout=30)
        with pytest.raises(grpc.RpcError) as info:
            stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="never-loaded"), timeout=30)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert list(stub.RepositoryIndex(pb.RepositoryIndexRequest(ready=True), timeout=10).models) == []
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready

        # MLServer's own repository service answers the same way
        _stage_model(models_dir, "iris-def456", weights)
        repo.RepositoryModelLoad(mr.RepositoryModelLoadRequest(model_name="iris-def456"), timeout=60)
        index = repo.RepositoryIndex(mr.RepositoryIndexRequest(ready=True), timeout=10).models
        assert [(m.name, m.version, m.state, m.reason) for m in index] == [("iris-def456", "", "READY", "")]
        assert list(_infer(stub, "iris-def456").outputs[0].contents.int64_contents) == [0]
        everything = {m.name: m.state for m in repo.RepositoryIndex(mr.RepositoryIndexRequest(), timeout=10).models}
        assert everything == {"iris-abc123": "UNAVAILABLE", "iris-def456": "READY"}
        repo.RepositoryModelUnload(mr.RepositoryModelUnloadRequest(model_name="iris-def456"), timeout=30)
        with pytest.raises(grpc.RpcError) as info:
            repo.RepositoryModelLoad(mr.RepositoryModelLoadRequest(model_name="nothing-here"), timeout=30)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert s.stop() == 0
    assert "Traceback" not in s.output, s.output

"""MLServer's own mlflow runtime (mlserver-mlflow 1.7.1 from PyPI, imports renamed) loads a tiny
scikit-learn model saved by MLflow and answers over V2 REST, gRPC and its custom ``/invocations``
endpoint (``@custom_handler``), served by modelport."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest

from modelport.wire.grpc import grpc_predict_v2_pb2 as pb
from modelport.wire.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from .mlserver_pypi import unpack_renamed

# mlflow's own import-time warnings (its type-hint inference), not ours.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:mlflow", "ignore::DeprecationWarning:mlflow",
                                        "ignore::FutureWarning:mlflow")


@pytest.fixture
def mlflow_folder(tmp_path, monkeypatch, iris):
    mlflow_sklearn = pytest.importorskip("mlflow.sklearn")
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    # Renamed: modelport maps mlserver_mlflow.MLflowRuntime to its own MLflow runtime; this is MLServer's.
    monkeypatch.syspath_prepend(str(unpack_renamed("mlserver-mlflow", tmp_path / "pkgs", package_as="pypi_mlserver_mlflow")))
    x, y = iris
    clf = LogisticRegression(max_iter=500).fit(x, y)
    mlflow_sklearn.save_model(clf, str(tmp_path / "models" / "iris" / "model"), signature=infer_signature(x, clf.predict(x)),
                             serialization_format=mlflow_sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE)
    (tmp_path / "models" / "iris" / "model-settings.json").write_text(json.dumps(
        {"name": "iris", "implementation": "pypi_mlserver_mlflow.MLflowRuntime", "parameters": {"uri": "./model"}}))
    return tmp_path / "models", clf, x[:2]


async def test_mlflow_runtime_answers_v2_rest_and_grpc(serve, mlflow_folder):
    folder, clf, x = mlflow_folder
    server, http = await serve(model_repository=str(folder), enable_grpc=True)
    assert (await http.get("/v2/models/iris/ready")).status_code == 200
    body = {"inputs": [{"name": "input-0", "datatype": "FP32", "shape": [2, 4], "data": x.ravel().tolist()}]}
    r = await http.post("/v2/models/iris/infer", json=body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert isinstance(doc["id"], str) and doc["model_name"] == "iris"
    (out,) = doc["outputs"]
    assert out["data"] == clf.predict(x).tolist() and out["datatype"] == "INT64"
    # The signature becomes the model's metadata (the runtime's own _sync_metadata).
    meta = (await http.get("/v2/models/iris")).json()
    assert [t["datatype"] for t in meta["inputs"]] == ["FP32"] and meta["inputs"][0]["shape"] == [-1, 4]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        request = pb.ModelInferRequest(model_name="iris")
        request.inputs.add(name="input-0", datatype="FP32", shape=[2, 4]).contents.fp32_contents.extend(x.ravel().tolist())
        reply = await GRPCInferenceServiceStub(channel).ModelInfer(request)
    assert reply.id and reply.outputs[0].datatype == "INT64"
    assert np.frombuffer(reply.raw_output_contents[0], "<i8").tolist() == clf.predict(x).tolist() if reply.raw_output_contents \
        else list(reply.outputs[0].contents.int64_contents) == clf.predict(x).tolist()


async def test_mlflow_custom_endpoints_are_served(serve, mlflow_folder):
    folder, clf, x = mlflow_folder
    server, http = await serve(model_repository=str(folder), enable_grpc=False)
    r = await http.post("/invocations", json={"inputs": x.tolist()})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": clf.predict(x).tolist()}
    r = await http.get("/ping")
    assert (r.status_code, r.text) == (200, '"\\n"')
    assert (await http.get("/version")).status_code == 200
    r = await http.get("/invocations")  # declared for POST only
    assert r.status_code == 405 and r.json() == {"error": "Method GET not allowed; use POST"}
    r = await http.post("/invocations", content=b"a,b", headers={"content-type": "text/plain"})
    assert r.status_code == 400 and "supports the following content types" in r.json()["error"]
    assert (await http.post("/v2/models/iris/infer", json={"inputs": []})).status_code in (400, 500)
    assert (await http.get("/v2/health/live")).status_code == 200  # the server serves on

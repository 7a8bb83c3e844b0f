"""What a script that imported ``kserve`` meets under modelport (issue 21): module paths as attributes,
KServe's repository and errors, fastapi's HTTPException, BYTES as bytes from gRPC, a response id on
every V2 answer, ``start(models=None)``, and bare model folders given as relative paths."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import grpc
import grpc.aio
import httpx
import numpy as np
import pytest

from modelport import InferOutput, InferRequest, InferResponse, Model, ModelServer
from modelport.wire.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from ..grpc_helpers import infer_request

REPO = Path(__file__).resolve().parents[2]


def test_import_modelport_exposes_kserve_module_paths_lazily():
    # In a fresh interpreter: the attributes resolve after a bare import, and only on first use.
    code = (
        "import sys, modelport\n"
        "before = sorted(m for m in ('modelport.model_server', 'modelport.model_repository', 'modelport.constants')"
        " if m in sys.modules)\n"
        "import argparse\n"
        "argparse.ArgumentParser(parents=[modelport.model_server.parser])\n"
        "modelport.constants.KSERVE_LOGLEVEL, modelport.utils.utils.get_predict_input, modelport.logging.logger\n"
        "modelport.errors.ModelMissingError, modelport.model_repository.MODEL_MOUNT_DIRS\n"
        "modelport.protocol.infer_type.InferRequest, modelport.protocol.rest.v2_datamodels.InferenceRequest\n"
        "modelport.inference_client.InferenceRESTClient, modelport.predictor_config.PredictorConfig\n"
        "print(before)\n"
    )
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_unknown_attribute_still_raises():
    import modelport

    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        modelport.nonexistent  # noqa: B018


def test_kserve_errors_have_kserve_messages():
    from modelport.errors import ModelMissingError, NoModelReady, WorkersShouldBeLessThanMaxWorkersError

    assert str(ModelMissingError("/mnt/models/x")) == "/mnt/models/x"
    assert ModelMissingError("/m").path == "/m"
    one, two = Model("a"), Model("b")
    assert str(NoModelReady([one])) == "Model with name a is not ready."
    assert str(NoModelReady([one, two], "Check the logs.")) == "Models with names a,b are not ready. Check the logs."
    assert str(WorkersShouldBeLessThanMaxWorkersError(4)) == "Workers cannot be greater than 4"


class Twice(Model):
    def __init__(self, name: str, folder: str):
        super().__init__(name)
        self.folder = folder

    def load(self) -> bool:
        self.factor = float(Path(self.folder, "factor.txt").read_text())
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        return {"predictions": [x * self.factor for x in payload["instances"]]}


def test_kserve_repository_subclass_loads_each_subfolder(tmp_path):
    from modelport.model_repository import MODEL_MOUNT_DIRS, ModelRepository

    class TwiceRepository(ModelRepository):
        def __init__(self, models_dir: str = MODEL_MOUNT_DIRS):
            super().__init__(models_dir)
            self.load_models()

        async def load(self, name: str) -> bool:
            return self.load_model(name)

        def load_model(self, name: str) -> bool:
            model = Twice(name, os.path.join(self.models_dir, name))
            if model.load():
                self.update(model)
            return model.ready

    for name, factor in (("a", "2"), ("b", "3")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "factor.txt").write_text(factor)
    (tmp_path / "not-a-folder.txt").write_text("")
    repo = TwiceRepository(str(tmp_path))
    assert MODEL_MOUNT_DIRS == "/mnt/models"
    assert sorted(repo.models) == ["a", "b"] and repo.get_model("b").factor == 3.0
    assert repo.build_folder() == []  # the folder is the subclass's: no model-settings.json discovery


async def test_kserve_repository_serves_through_the_server(tmp_path):
    from modelport.model_repository import ModelRepository

    class Repo(ModelRepository):
        def load_model(self, name: str) -> bool:
            model = Twice(name, os.path.join(self.models_dir, name))
            model.load()
            self.update(model)
            return True

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "factor.txt").write_text("4")
    repo = Repo(str(tmp_path))
    repo.load_models()
    server = ModelServer(registered_models=repo, host="127.0.0.1", http_port=0, enable_grpc=False)
    await server.start_async([])
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
            r = await http.post("/v1/models/m:predict", json={"instances": [1, 2]})
            assert r.status_code == 200 and r.json() == {"predictions": [4.0, 8.0]}
            # KServe's load(name) (the repository API) reaches the subclass's load_model(name).
            r = await http.post("/v2/repository/models/m/load")
            assert r.status_code == 200
    finally:
        await server.stop(grace_period=1)


@pytest.mark.parametrize("models", [None, "model", 3, [object()]], ids=["none", "str", "int", "not-a-model"])
def test_start_refuses_what_kserve_refuses(models):
    with pytest.raises(RuntimeError):
        ModelServer(host="127.0.0.1", http_port=0).start(models)


# -- fastapi / Starlette HTTPException from a hook ------------------------------------------------
class Raising(Model):
    def __init__(self, name: str, exc: BaseException):
        super().__init__(name)
        self.exc = exc
        self.ready = True

    def predict(self, payload, headers=None):
        raise self.exc


def _http_exceptions():
    from fastapi import HTTPException as FastAPIHTTPException
    from starlette.exceptions import HTTPException as StarletteHTTPException

    return [
        (FastAPIHTTPException(400, "bad page"), 400, {"detail": "bad page"}, grpc.StatusCode.INVALID_ARGUMENT),
        (FastAPIHTTPException(404, {"page": 1}), 404, {"detail": {"page": 1}}, grpc.StatusCode.NOT_FOUND),
        (StarletteHTTPException(429, "slow down"), 429, {"detail": "slow down"}, grpc.StatusCode.RESOURCE_EXHAUSTED),
        (FastAPIHTTPException(418, "teapot"), 418, {"detail": "teapot"}, grpc.StatusCode.INVALID_ARGUMENT),
        (FastAPIHTTPException(503, "later"), 503, {"detail": "later"}, grpc.StatusCode.UNAVAILABLE),
    ]


async def test_http_exception_keeps_status_and_detail(serve):
    cases = _http_exceptions()
    models = [Raising(f"m{i}", exc) for i, (exc, *_) in enumerate(cases)]
    server, http = await serve(models, enable_grpc=True)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = GRPCInferenceServiceStub(channel)
        for i, (_, status, body, code) in enumerate(cases):
            r = await http.post(f"/v1/models/m{i}:predict", json={"instances": [1]})
            assert (r.status_code, r.json()) == (status, body)
            r = await http.post(f"/v2/models/m{i}/infer", json={"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]})
            assert (r.status_code, r.json()) == (status, body)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.ModelInfer(infer_request(f"m{i}", ("x", "FP32", np.ones(1, np.float32))))
            assert info.value.code() == code
            assert info.value.details() == str(body["detail"])


def test_http_exception_headers_are_sent(serve):
    from fastapi import HTTPException

    from modelport.transports.rest.errors import error_response

    status, body, headers = error_response(HTTPException(401, "who?", headers={"WWW-Authenticate": "Basic"}),
                                           {"method": "POST", "path": "/v1/models/m:predict"})
    assert (status, json.loads(body)) == (401, {"detail": "who?"}) and (b"www-authenticate", b"Basic") in headers


def test_lookalikes_are_not_http_exceptions():
    from modelport.compat.kserve.http_exception import http_exception

    class HTTPException(Exception):  # the user's own class of the same name: a plain failure (500)
        status_code, detail = 400, "x"

    assert http_exception(HTTPException()) is None
    from fastapi import HTTPException as Real

    assert http_exception(Real(400, "x")) == (400, "x", {})
    bogus = Real(400, "x")
    bogus.status_code = 200  # not an error status: not honoured
    assert http_exception(bogus) is None


# -- BYTES from gRPC, response ids ----------------------------------------------------------------
class Inspect(Model):
    """Answers with the Python types of its first input's data and as_numpy, and as_string."""

    def __init__(self):
        super().__init__("inspect")
        self.ready = True

    def predict(self, request: InferRequest, headers=None):
        tensor = request.inputs[0]
        seen = {"from_grpc": request.from_grpc, "data": [type(v).__name__ for v in tensor.data],
                "numpy": [type(v).__name__ for v in tensor.as_numpy().ravel()], "string": tensor.as_string()}
        out = InferOutput("seen", [1], "BYTES")
        out.set_data_from_numpy(np.array([json.dumps(seen)], dtype=object), binary_data=False)
        return InferResponse(None, self.name, [out])


def _seen(text) -> dict:
    return json.loads(text.decode() if isinstance(text, bytes) else text)


@pytest.mark.parametrize("raw", [False, True], ids=["typed-contents", "raw-contents"])
async def test_grpc_bytes_reach_the_model_as_bytes(serve, raw):
    server, http = await serve([Inspect()], enable_grpc=True)
    array = np.array([b'{"page_id": 1}', "é".encode()], dtype=object)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        reply = await GRPCInferenceServiceStub(channel).ModelInfer(infer_request("inspect", ("x", "BYTES", array), raw=raw))
    raw_reply = reply.raw_output_contents[0][4:] if reply.raw_output_contents else reply.outputs[0].contents.bytes_contents[0]
    assert _seen(raw_reply) == {"from_grpc": True, "data": ["bytes", "bytes"], "numpy": ["bytes", "bytes"],
                                "string": ['{"page_id": 1}', "é"]}
    # REST JSON: the data as sent (text), as_numpy bytes (as before).
    r = await http.post("/v2/models/inspect/infer", json={"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": ["a"]}]})
    assert _seen(r.json()["outputs"][0]["data"][0]) == {"from_grpc": False, "data": ["str"], "numpy": ["bytes"], "string": ["a"]}


UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


async def test_every_v2_response_has_an_id(serve):
    server, http = await serve([Inspect()], enable_grpc=True)
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}
    ids = [(await http.post("/v2/models/inspect/infer", json=body)).json()["id"] for _ in range(2)]
    assert all(UUID4.match(i) for i in ids) and ids[0] != ids[1]
    assert (await http.post("/v2/models/inspect/infer", json={**body, "id": "mine"})).json()["id"] == "mine"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = GRPCInferenceServiceStub(channel)
        reply = await stub.ModelInfer(infer_request("inspect", ("x", "BYTES", np.array([b"a"], dtype=object))))
        assert UUID4.match(reply.id)
        reply = await stub.ModelInfer(infer_request("inspect", ("x", "BYTES", np.array([b"a"], dtype=object)), id="g"))
        assert reply.id == "g"


# -- `modelport serve bare` with a relative path ----------------------------------------------------
def test_serve_relative_folder_of_bare_model_files(tmp_path):
    bare = tmp_path / "bare" / "lin"
    bare.mkdir(parents=True)
    onnx = pytest.importorskip("skl2onnx")
    from sklearn.linear_model import LinearRegression

    reg = LinearRegression().fit(np.array([[0.0], [1.0]], np.float32), np.array([1.0, 3.0], np.float32))
    (bare / "model.onnx").write_bytes(onnx.to_onnx(reg, np.zeros((1, 1), np.float32), target_opset=17).SerializeToString())
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelport.cli", "serve", "bare", "--host", "127.0.0.1", "--http-port", "0", "--grpc-port", "0"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "server exited"
            if m := re.search(r"Listening for HTTP on (http://\S+)", line):
                url = m.group(1)
        assert url
        while time.monotonic() < deadline:
            if httpx.get(url + "/v2/health/ready", timeout=5).status_code == 200:
                break
            time.sleep(0.05)
        index = httpx.post(url + "/v2/repository/index", timeout=5).json()
        assert [(m["name"], m["state"]) for m in index] == [("lin", "READY")], index
        r = httpx.post(url + "/v2/models/lin/infer", timeout=5,
                       json={"inputs": [{"name": "X", "shape": [1, 1], "datatype": "FP32", "data": [2.0]}]})
        assert r.status_code == 200 and r.json()["outputs"][0]["data"] == pytest.approx([5.0])
    finally:
        proc.terminate()
        proc.wait(30)
        proc.stdout.close()


# -- KServe's REST document from InferRequest/InferResponse.to_rest() ------------------------------
def test_request_to_rest_is_kserves_document():
    from modelport import InferInput

    x = InferInput("x", [2], "INT32")
    x.set_data_from_numpy(np.array([1, 2], np.int32), binary_data=False)
    s = InferInput("s", [1], "BYTES")
    s.set_data_from_numpy(np.array([b"ab"], dtype=object), binary_data=True)
    body, length = InferRequest("m", [x, s], request_id="r", parameters={"p": 1}).to_rest()
    head = b'{"id":"r","model_name":"m","inputs":[{"name":"x","shape":[2],"datatype":"INT32","data":[1,2]},' \
           b'{"name":"s","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":6}}],"parameters":{"p":1}}'
    assert (body, length) == (head + b"\x02\x00\x00\x00ab", len(head))
    doc, length = InferRequest("m", [x]).to_rest()  # no id: a fresh one, as KServe
    assert length is None and UUID4.match(doc["id"]) and list(doc) == ["id", "model_name", "inputs"]


def test_response_to_rest_is_kserves_document():
    from modelport import RequestedOutput
    from modelport.errors import InvalidInput

    y = InferOutput("y", [2], "FP32")
    y.set_data_from_numpy(np.array([0.5, 1.5], np.float32))
    doc, length = InferResponse("1", "m", [y]).to_rest()
    assert (doc, length) == ({"id": "1", "model_name": "m", "model_version": None,
                              "outputs": [{"name": "y", "shape": [2], "datatype": "FP32", "data": [0.5, 1.5]}]}, None)
    body, length = InferResponse("1", "m", [y], requested_outputs=[RequestedOutput("y", {"binary_data": True})]).to_rest()
    assert body[length:] == np.array([0.5, 1.5], "<f4").tobytes()
    half = InferOutput("h", [1], "FP16", np.array([1.0], np.float16))
    with pytest.raises(InvalidInput, match="FP16 data via JSON is not supported"):
        InferResponse("1", "m", [half]).to_rest()


def test_serialize_byte_tensor_as_kserve_returns_it():
    from modelport.protocol.infer_type import deserialize_bytes_tensor, serialize_byte_tensor

    packed = serialize_byte_tensor(np.array([b"cat", "dög"], dtype=object))
    assert packed.dtype == object and packed.item() == b"\x03\x00\x00\x00cat\x04\x00\x00\x00d\xc3\xb6g"
    assert deserialize_bytes_tensor(packed.item()).tolist() == [b"cat", "dög".encode()]
    assert serialize_byte_tensor(np.array([], dtype=object)).shape == (0,)


def test_from_inference_request_refuses_fp16_json_as_kserve():
    from modelport.errors import InvalidInput
    from modelport.protocol.rest.v2_datamodels import InferenceRequest, RequestInput

    with pytest.raises(InvalidInput, match="FP16 data via JSON"):
        InferRequest.from_inference_request(
            InferenceRequest(inputs=[RequestInput(name="h", shape=[1], datatype="FP16", data=[1.0])]), "m")
    ok = InferRequest.from_inference_request(
        InferenceRequest(id="i", inputs=[RequestInput(name="x", shape=[2], datatype="INT32", data=[1, 2])]), "m")
    assert (ok.id, ok.model_name, ok.inputs[0].as_numpy().tolist()) == ("i", "m", [1, 2])

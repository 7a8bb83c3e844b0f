"""KServe-style servers on KServe 0.16 and on modelport, only their imports changed: the same status,
body and JSON types over V1, V2 REST and V2 gRPC.

- ``kserve_servers/linserver``: the package layout of KServe's own sklearnserver/xgbserver/lgbserver
  (``python -m linserver --model_dir ... --model_name ...``; ``kserve.model_repository``,
  ``kserve.errors.ModelMissingError``, ``parents=[kserve.model_server.parser]``), one model folder and
  a folder of model sub-folders (its repository subclass).
- ``kserve_scripts/liftwing_transformer.py``: LiftWing's way (fastapi.HTTPException, JSON documents in a
  BYTES tensor, bytes over gRPC).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest

from modelport.protocol.grpc import grpc_predict_v2_pb2 as pb
from modelport.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

from .kserve_peer import SCRIPTS, Script, as_modelport, unused_port, kserve_python, modelport_env  # noqa: F401

pytestmark = [pytest.mark.peer_kserve, pytest.mark.timeout(1200)]
SERVERS = Path(__file__).resolve().parent / "kserve_servers"
X = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]
LINEAR = {"coef": [[0.5, 1.0, -1.0, -0.5], [0.0, -0.5, 0.5, 0.2], [-0.5, -0.5, 0.8, 1.0]], "intercept": [0.1, 0.2, -0.3]}


def _argmax(rows: list) -> list[int]:
    scores = np.asarray(rows) @ np.asarray(LINEAR["coef"]).T + np.asarray(LINEAR["intercept"])
    return scores.argmax(axis=1).tolist()


def package_as_modelport(package: Path, into: Path) -> Path:
    """A copy of a KServe server package with ``kserve`` renamed ``modelport`` in every module."""
    target = into / package.name
    shutil.copytree(package, target, ignore=shutil.ignore_patterns("__pycache__"))
    for module in target.glob("*.py"):
        module.write_text(re.sub(r"\bkserve\b", "modelport", module.read_text()))
    return into


def _types(doc):
    """The JSON types of a document, recursively (ints stay ints, floats floats, strings strings)."""
    if isinstance(doc, dict):
        return {k: _types(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_types(v) for v in doc]
    return type(doc).__name__


def _same(doc):
    """A body without what each server makes fresh per response (a V2 uuid ``id``) and without the
    null fields KServe writes out (``"model_version": null``) where modelport leaves the key out (a
    difference the README lists)."""
    if isinstance(doc, dict):
        return {k: _same(v) for k, v in doc.items() if k != "id" and v is not None}
    if isinstance(doc, list):
        return [_same(v) for v in doc]
    return doc


class Pair:
    """One server command started on KServe and on modelport."""

    def __init__(self, tmp: Path, kserve_python: str, model: str, modelport_root: Path, kserve_root: Path,
                 args: list[str], module: str | None = None, script: str | None = None, env: dict | None = None):
        self.urls, self.grpc, self.procs = {}, {}, []
        for name, python, root, extra_env in (
            ("kserve", kserve_python, kserve_root, {"PYTHONPATH": str(kserve_root)}),
            ("modelport", sys.executable, modelport_root,
             {**modelport_env(), "PYTHONPATH": f"{modelport_root}:{modelport_env()['PYTHONPATH']}"}),
        ):
            http, grpc_port = unused_port(), unused_port()
            target = ["-m", module] if module else [str(root / script)]
            proc = Script(python, *target[:1], *target[1:], "--http_port", str(http), "--grpc_port", str(grpc_port),
                          "--model_name", model, *args, env={**extra_env, **(env or {})}, log=tmp / f"{name}.log")
            self.procs.append(proc)
            self.urls[name], self.grpc[name] = f"http://127.0.0.1:{http}", f"127.0.0.1:{grpc_port}"

    def wait(self, model: str) -> None:
        for proc, url in zip(self.procs, self.urls.values()):
            proc.wait_ready(url, model, timeout=110)

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()

    def post(self, path: str, body) -> dict:
        """{server: (status, body without the fresh id, its JSON types)}; also checks an id came back on V2."""
        out = {}
        for name, url in self.urls.items():
            r = httpx.post(url + path, json=body, timeout=30)
            doc = r.json()
            if path.startswith("/v2") and r.status_code == 200:
                assert isinstance(doc.get("id"), str) and doc["id"], (name, doc)
            out[name] = (r.status_code, _same(doc), _types(_same(doc)))
        return out

    def get(self, path: str) -> dict:
        return {name: (lambda r: (r.status_code, r.json()))(httpx.get(url + path, timeout=30)) for name, url in self.urls.items()}

    def grpc_infer(self, request: pb.ModelInferRequest) -> dict:
        out = {}
        for name, target in self.grpc.items():
            with grpc.insecure_channel(target) as channel:
                try:
                    reply = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
                except grpc.RpcError as exc:
                    out[name] = (exc.code(), exc.details())
                    continue
            assert reply.id, name
            outputs = [(o.name, o.datatype, list(o.shape), list(o.contents.bytes_contents), list(o.contents.int64_contents),
                        list(o.contents.fp64_contents)) for o in reply.outputs]
            out[name] = (grpc.StatusCode.OK, reply.model_name, outputs, len(reply.raw_output_contents))
        return out


@pytest.fixture(scope="module")
def linserver(tmp_path_factory, kserve_python):
    tmp = tmp_path_factory.mktemp("linserver")
    model_dir = tmp / "model"
    model_dir.mkdir()
    (model_dir / "model.json").write_text(json.dumps(LINEAR))
    pair = Pair(tmp, kserve_python, "iris", package_as_modelport(SERVERS / "linserver", tmp / "mp"), SERVERS,
                ["--model_dir", str(model_dir)], module="linserver")
    try:
        pair.wait("iris")
        yield pair
    finally:
        pair.stop()


def test_builtin_server_pattern_v1_same_as_kserve(linserver):
    answers = linserver.post("/v1/models/iris:predict", {"instances": X})
    assert answers["modelport"] == answers["kserve"]
    assert answers["modelport"][0] == 200 and answers["modelport"][1] == {"predictions": _argmax(X)}


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_builtin_server_pattern_v2_same_as_kserve(linserver, datatype):
    body = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": datatype, "data": sum(X, [])}]}
    answers = linserver.post("/v2/models/iris/infer", body)
    assert answers["modelport"] == answers["kserve"]
    assert answers["modelport"][0] == 200


def test_builtin_server_pattern_bad_input_same_status(linserver):
    answers = linserver.post("/v1/models/iris:predict", {"instances": [[1.0, 2.0]]})
    assert answers["modelport"][0] == answers["kserve"][0] == 500


def test_builtin_server_pattern_grpc_same_as_kserve(linserver):
    request = pb.ModelInferRequest(model_name="iris", id="g-1")
    tensor = request.inputs.add(name="input-0", datatype="FP64", shape=[2, 4])
    tensor.contents.fp64_contents.extend(sum(X, []))
    answers = linserver.grpc_infer(request)
    assert answers["modelport"] == answers["kserve"]
    assert answers["modelport"][0] == grpc.StatusCode.OK


def test_builtin_server_pattern_metadata_and_ready(linserver):
    ready = linserver.get("/v2/models/iris/ready")
    assert ready["modelport"] == ready["kserve"] == (200, {"name": "iris", "ready": True})
    meta = linserver.get("/v2/models/iris")
    assert meta["modelport"][0] == meta["kserve"][0] == 200
    assert meta["modelport"][1]["name"] == meta["kserve"][1]["name"] == "iris"


def test_builtin_server_pattern_repository_of_subfolders(tmp_path, kserve_python):
    # No model file in --model_dir: ModelMissingError, then the repository subclass serves each sub-folder.
    for name in ("setosa", "versicolor"):
        (tmp_path / "models" / name).mkdir(parents=True)
        (tmp_path / "models" / name / "model.json").write_text(json.dumps(LINEAR))
    pair = Pair(tmp_path, kserve_python, "unused", package_as_modelport(SERVERS / "linserver", tmp_path / "mp"), SERVERS,
                ["--model_dir", str(tmp_path / "models")], module="linserver")
    try:
        pair.wait("setosa")
        for model in ("setosa", "versicolor"):
            answers = pair.post(f"/v1/models/{model}:predict", {"instances": X[:1]})
            assert answers["modelport"] == answers["kserve"]
            assert answers["modelport"][:2] == (200, {"predictions": _argmax(X[:1])})
    finally:
        pair.stop()


@pytest.fixture(scope="module")
def liftwing(tmp_path_factory, kserve_python):
    tmp = tmp_path_factory.mktemp("liftwing")
    mp = tmp / "mp"
    mp.mkdir()
    as_modelport(SCRIPTS / "liftwing_transformer.py", mp)
    pair = Pair(tmp, kserve_python, "outlink-topic-model", mp, SCRIPTS, [], script="liftwing_transformer.py")
    try:
        pair.wait("outlink-topic-model")
        yield pair
    finally:
        pair.stop()


@pytest.mark.parametrize("body", [
    {"page_id": 5355, "lang": "en"},
    {"lang": "en"},  # HTTPException(400)
    {"page_id": "x"},  # HTTPException(422) with a dict detail
    {"page_id": 404},  # HTTPException(404)
], ids=["ok", "400", "422", "404"])
def test_liftwing_v1_same_as_kserve(liftwing, body):
    answers = liftwing.post("/v1/models/outlink-topic-model:predict", body)
    assert answers["modelport"] == answers["kserve"]


def test_liftwing_http_exception_keeps_status_and_detail(liftwing):
    answers = liftwing.post("/v1/models/outlink-topic-model:predict", {"lang": "en"})
    assert answers["modelport"][:2] == (400, {"detail": "The parameter page_id is required."})


@pytest.mark.parametrize("page", [{"page_id": 5355, "lang": "en"}, {"lang": "en"}], ids=["ok", "400"])
def test_liftwing_v2_rest_same_as_kserve(liftwing, page):
    body = {"inputs": [{"name": "input_json", "shape": [1], "datatype": "BYTES", "data": [json.dumps(page)]}]}
    answers = liftwing.post("/v2/models/outlink-topic-model/infer", body)
    assert answers["modelport"] == answers["kserve"]


def _grpc_page(page: dict) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="outlink-topic-model")
    tensor = request.inputs.add(name="input_json", datatype="BYTES", shape=[1])
    tensor.contents.bytes_contents.append(json.dumps(page).encode())
    return request


def test_liftwing_v2_grpc_bytes_same_as_kserve(liftwing):
    # The model insists on bytes for a gRPC request (LiftWing's check): both servers hand it bytes.
    answers = liftwing.grpc_infer(_grpc_page({"page_id": 5355, "lang": "en"}))
    assert answers["modelport"] == answers["kserve"]
    assert answers["modelport"][0] == grpc.StatusCode.OK


def test_liftwing_http_exception_over_grpc(liftwing):
    # KServe answers INTERNAL for an HTTPException over gRPC; modelport maps its status (400 ->
    # INVALID_ARGUMENT) and sends the detail, as the README's difference list says.
    answers = liftwing.grpc_infer(_grpc_page({"lang": "en"}))
    assert answers["kserve"][0] == grpc.StatusCode.INTERNAL
    assert answers["modelport"] == (grpc.StatusCode.INVALID_ARGUMENT, "The parameter page_id is required.")

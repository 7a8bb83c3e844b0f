"""The XGBoost runtime's fast path gives XGBoost's own answers, and bad input still gets a 400.

For a dense float array of the model's width the runtime calls XGBoost's in-place dense prediction
directly, with arguments built once (``_xgboost_dense.py``). These tests compare its output with the
estimator's own predict / predict_proba (and a Booster's inplace_predict, which is what the runtime
answered before) over whole datasets, float32 and float64, row by row and in V1; check NaN (XGBoost's
"missing") and inf answer as XGBoost does, wrong width / text / empty input behave as before, the
thread setting reaches the Booster, and a real server answers and refuses over REST.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelport.errors import InvalidInput
from modelport.repository.entries import build_model
from modelport.settings import ModelParameters, ModelSettings, SettingsError
from modelport.types import InferInput, InferRequest, RequestedOutput
from modelport.wire import v2_json

xgb = pytest.importorskip("xgboost")
pytest.importorskip("sklearn")
from sklearn.datasets import load_breast_cancer, load_iris

IRIS_X, IRIS_Y = load_iris(return_X_y=True)
CANCER_X, CANCER_Y = load_breast_cancer(return_X_y=True)


def trained():
    """name -> (model file name, a function that trains and saves it there, data)."""
    half = len(CANCER_X) // 2

    def early_stopped(path):
        est = xgb.XGBClassifier(n_estimators=60, max_depth=3, early_stopping_rounds=3, random_state=0)
        est.fit(CANCER_X[:half], CANCER_Y[:half], eval_set=[(CANCER_X[half:], CANCER_Y[half:])], verbose=False)
        assert est.best_iteration + 1 < est.get_booster().num_boosted_rounds()  # so the range matters
        est.save_model(path)

    def booster(objective, X, y, **params):
        def train(path):
            d = xgb.DMatrix(X, label=y)
            xgb.train({"objective": objective, "max_depth": 3, **params}, d, num_boost_round=15).save_model(path)
        return train

    return {
        "iris-classifier": ("model.json", lambda p: xgb.XGBClassifier(n_estimators=20, random_state=0).fit(IRIS_X, IRIS_Y).save_model(p), IRIS_X),
        "cancer-classifier": ("model.ubj", lambda p: xgb.XGBClassifier(n_estimators=20, random_state=0).fit(CANCER_X, CANCER_Y).save_model(p), CANCER_X),
        "early-stopped": ("model.json", early_stopped, CANCER_X),
        "regressor": ("model.json", lambda p: xgb.XGBRegressor(n_estimators=20, random_state=0).fit(IRIS_X[:, :3], IRIS_X[:, 3]).save_model(p), IRIS_X[:, :3]),
        "booster-softprob": ("model.json", booster("multi:softprob", IRIS_X, IRIS_Y, num_class=3), IRIS_X),
        "booster-logistic": ("model.ubj", booster("binary:logistic", CANCER_X, CANCER_Y), CANCER_X),
        "softmax-classifier": ("model.json", lambda p: xgb.XGBClassifier(n_estimators=10, objective="multi:softmax", random_state=0).fit(IRIS_X, IRIS_Y).save_model(p), IRIS_X),
    }


FAST = ["iris-classifier", "cancer-classifier", "early-stopped", "regressor", "booster-softprob", "booster-logistic"]


def load(folder, name, **extra):
    settings = ModelSettings(name=name, implementation="xgboost", parameters=ModelParameters(uri=str(folder), extra=extra), folder=str(folder))
    model = build_model(settings)
    assert model.load()
    return model


def reference(path):
    """The model file loaded by XGBoost itself, as its user would."""
    booster = xgb.Booster(model_file=str(path))
    kind = json.loads(booster.attr("scikit_learn") or "{}").get("_estimator_type")
    if kind is None:
        return booster
    est = {"classifier": xgb.XGBClassifier, "regressor": xgb.XGBRegressor}[kind]()
    est.load_model(str(path))
    return est


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = {}
    for name, (file, train, data) in trained().items():
        folder = tmp_path_factory.mktemp(name)
        train(folder / file)
        out[name] = (load(folder, name), reference(folder / file), data, folder)
    return out


def v2(array, outputs=None, datatype=None):
    tensor = InferInput("input-0", list(array.shape), datatype or ("FP64" if array.dtype == np.float64 else "FP32"))
    tensor.set_data_from_numpy(array)
    requested = [RequestedOutput(o) for o in outputs] if outputs else None
    return InferRequest("m", [tensor], request_outputs=requested)


def outputs(response):
    return {o.name: o.as_numpy() for o in response.outputs}


def own_answers(est, data, methods):
    if isinstance(est, xgb.Booster):
        return {"predict": est.inplace_predict(data)}
    return {m: getattr(est, m)(data) for m in methods}


def methods_of(est):
    return ["predict", "predict_proba"] if hasattr(est, "predict_proba") else ["predict"]


def assert_same(got, expect):
    assert set(got) == set(expect)
    for method, array in expect.items():
        assert got[method].dtype == array.dtype, (method, got[method].dtype, array.dtype)
        np.testing.assert_array_equal(got[method], array)


def test_the_fast_path_is_taken_where_it_can_be(models):
    for name in FAST:
        assert models[name][0]._fast is not None, name
    assert models["softmax-classifier"][0]._fast is None  # predict_proba is a softmax of margins: XGBoost's own path


@pytest.mark.parametrize("name", list(trained()))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_whole_dataset_matches_xgboost(models, name, dtype):
    model, est, data, _ = models[name]
    data = data.astype(dtype)
    methods = methods_of(est)
    expect = own_answers(est, data, methods)
    assert_same(outputs(model.predict(v2(data, methods))), expect)
    # what the runtime answered before the fast path: XGBoost's Python API
    assert_same(model._checked_outputs(data, set(methods)), expect)
    # one row at a time, as a server mostly sees them
    for row in data[::9]:
        assert_same(outputs(model.predict(v2(row[None, :], methods))), own_answers(est, row[None, :], methods))
    # V1 rows: the configured method (predict)
    assert model.predict({"instances": data[:5].tolist()}) == {"predictions": own_answers(est, data[:5].astype(np.float64), ["predict"])["predict"].tolist()}


@pytest.mark.parametrize("name", FAST)
def test_random_rows_match_xgboost(models, name):
    """Random inputs (NaN and values far outside the training range included), one row and several
    (copied in: up to _COPY_BYTES; addressed in place: more), float32 and float64: XGBoost's own
    answers, value for value, dtype and shape."""
    from modelport.runtimes._xgboost_dense import _COPY_BYTES

    model, est, data, _ = models[name]
    methods = methods_of(est)
    rng = np.random.default_rng(11)
    scale = np.abs(data).max(axis=0) * 2
    for dtype in (np.float64, np.float32):
        many = max(40, _COPY_BYTES // (data.shape[1] * np.dtype(dtype).itemsize) + 5)
        batch = (rng.uniform(-1, 1, (many, data.shape[1])) * scale).astype(dtype)
        batch[rng.random(batch.shape) < 0.1] = np.nan
        for i in range(40):
            assert_same(model._fast.outputs(batch[i : i + 1], set(methods)), own_answers(est, batch[i : i + 1], methods))
        for k in (2, 7, _COPY_BYTES // (data.shape[1] * np.dtype(dtype).itemsize), many):
            assert_same(outputs(model.predict(v2(batch[:k], methods))), own_answers(est, batch[:k], methods))


@pytest.mark.parametrize("name", FAST)
def test_missing_and_infinite_values_answer_as_xgboost_does(models, name):
    # NaN is XGBoost's "missing" (the default): it answers, and so does the runtime. XGBoost takes inf as a value.
    model, est, data, _ = models[name]
    edge = data[:12].copy()
    edge[0, :] = np.nan
    edge[1, 0] = np.nan
    edge[2, -1] = np.inf
    edge[3, 1] = -np.inf
    edge[4, :] = np.finfo(np.float32).max
    for array in (edge, edge.astype(np.float32)):
        methods = methods_of(est)
        assert_same(outputs(model.predict(v2(array, methods))), own_answers(est, array, methods))


def test_other_inputs_take_xgboosts_own_path(models):
    model, est, data, _ = models["iris-classifier"]
    # integers are numbers: XGBoost's own path answers, as the estimator does
    ints = np.array([[5, 3, 1, 0], [7, 3, 5, 2]], dtype=np.int64)
    assert_same(outputs(model.predict(v2(ints, ["predict", "predict_proba"], "INT64"))), own_answers(est, ints, ["predict", "predict_proba"]))
    # a non-contiguous view (every other column of a wider array) answers too
    wide = np.repeat(data[:4], 2, axis=1)[:, ::2]
    assert not wide.flags.c_contiguous
    assert model._fast.outputs(wide, {"predict"}) is None
    np.testing.assert_array_equal(model._checked_outputs(wide, {"predict"})["predict"], est.predict(wide))
    # no rows: XGBoost's own empty answer, as before
    empty = np.zeros((0, 4))
    assert_same(outputs(model.predict(v2(empty, ["predict", "predict_proba"]))), own_answers(est, empty, ["predict", "predict_proba"]))


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        (v2(np.array([[1.0, 2.0, 3.0]])), "Feature shape mismatch, expected: 4, got 3"),
        (v2(np.ones((2, 5), dtype=np.float32)), "Feature shape mismatch, expected: 4, got 5"),
        (InferRequest("m", [InferInput("input-0", [1, 4], "BYTES", [b"a", b"b", b"c", b"d"])]), "cannot predict"),
        (v2(np.ones(4)), r"shape \[rows, features\]"),
        ({"instances": [["a", "b", "c", "d"]]}, "cannot predict"),
    ],
)
def test_bad_input_is_a_clear_error(models, request_, words):
    for name in ("iris-classifier", "booster-softprob"):
        with pytest.raises(InvalidInput, match=words):
            models[name][0].predict(request_)


def test_a_booster_has_only_predict(models):
    with pytest.raises(InvalidInput, match="only the predict output"):
        models["booster-softprob"][0].predict(v2(IRIS_X[:2], ["predict_proba"]))


def test_nthread_setting(models, tmp_path):
    def nthread(model):
        return json.loads(model._booster.save_config())["learner"]["generic_param"]["nthread"]

    folder = models["iris-classifier"][3]
    assert nthread(models["iris-classifier"][0]) == "1"  # the default: one thread per request
    assert nthread(load(folder, "two", nthread=2)) == "2"
    assert nthread(load(folder, "all", nthread=0)) == "0"
    assert nthread(models["booster-softprob"][0]) == "1"
    for bad in (-1, "2", 1.5, True):
        with pytest.raises(SettingsError, match="nthread"):
            load(folder, "bad", nthread=bad)


def test_predict_inline_only_for_a_few_rows_of_a_small_model(models, tmp_path):
    model, est, data, _ = models["iris-classifier"]  # 20 rounds × 3 classes = 60 trees
    assert model._fast.trees == 60 and model._inline_rows == 4096 // 60
    got = model.predict_inline(v2(data[:3], ["predict", "predict_proba"]))
    assert_same(outputs(got), own_answers(est, data[:3], ["predict", "predict_proba"]))
    assert model.predict_inline({"instances": data[:2].tolist()}) == {"predictions": est.predict(data[:2]).tolist()}
    assert model.predict_inline(v2(data)) is NotImplemented  # 150 rows: a thread's job
    assert model.predict_inline(v2(np.array([[1.0, 2.0, 3.0]]))) is NotImplemented  # XGBoost's own path, its error
    assert models["softmax-classifier"][0].predict_inline(v2(data[:1])) is NotImplemented
    # a model of 4,200 trees: even one row goes to a thread
    xgb.XGBClassifier(n_estimators=1400, max_depth=1, random_state=0).fit(data, IRIS_Y).save_model(tmp_path / "model.json")
    big = load(tmp_path, "big")
    assert big._fast.trees == 4200 and big.predict_inline(v2(data[:1])) is NotImplemented
    assert_same(outputs(big.predict(v2(data[:1], ["predict_proba"]))), own_answers(reference(tmp_path / "model.json"), data[:1], ["predict_proba"]))


def test_a_predictor_that_disagrees_with_xgboost_is_not_used(models):
    from modelport.runtimes._xgboost_dense import DensePredictor

    model, est, _, _ = models["early-stopped"]
    predictor = DensePredictor(xgb, model._model, model._booster)
    assert predictor._agrees_with(xgb, model._model)
    predictor._args = predictor._args.replace(b'"iteration_end": %d' % (est.best_iteration + 1), b'"iteration_end": 0')
    assert not predictor._agrees_with(xgb, model._model)  # every round instead of the best ones: caught


async def test_rest_answers_and_errors(serve, models):
    model, est, data, _ = models["iris-classifier"]
    _, client = await serve([model])
    url = "/v2/models/iris-classifier/infer"
    r = await client.post("/v1/models/iris-classifier:predict", json={"instances": data.tolist()})
    assert r.status_code == 200 and r.json() == {"predictions": est.predict(data).tolist()}
    body = {"inputs": [{"name": "input-0", "shape": [150, 4], "datatype": "FP32", "data": data.ravel().tolist()}],
            "outputs": [{"name": "predict_proba"}]}
    r = await client.post(url, json=body)
    assert r.status_code == 200
    np.testing.assert_array_equal(np.array(r.json()["outputs"][0]["data"], dtype=np.float32), est.predict_proba(data.astype(np.float32)).ravel())
    # NaN (missing) over the binary extension: XGBoost's answer
    edge = data[:3].astype(np.float32)
    edge[0, 1] = np.nan
    payload, json_len = v2_json.encode_request(v2(edge, ["predict_proba"]), binary_inputs=True, binary_outputs=True)
    r = await client.post(url, content=payload, headers={"Inference-Header-Content-Length": str(json_len), "Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    answer = v2_json.decode_response(r.content, int(r.headers["inference-header-content-length"]))
    np.testing.assert_array_equal(answer.outputs[0].as_numpy(), est.predict_proba(edge))
    r = await client.post("/v1/models/iris-classifier:predict", json={"instances": [[1.0, 2.0, 3.0]]})
    assert r.status_code == 400 and "Feature shape mismatch" in r.json()["error"]
    r = await client.post("/v1/models/iris-classifier:predict", json={"instances": [["a", "b", "c", "d"]]})
    assert r.status_code == 400 and r.json()["error"]
    r = await client.post("/v1/models/iris-classifier:predict", json={"instances": [[1.0, 2.0, 3.0, 4.0]]})
    assert r.status_code == 200  # and the server keeps serving

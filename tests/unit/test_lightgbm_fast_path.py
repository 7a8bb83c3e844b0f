"""The LightGBM runtime gives LightGBM's own answers, and bad input still gets a 400.

A dense float array goes straight to the C call ``Booster.predict`` makes for it
(``LGBM_BoosterPredictForMat``, ``_lightgbm_dense.py``), with one thread per request unless
``parameters.extra.num_threads`` says otherwise; other inputs take ``Booster.predict``. These tests compare the runtime's output with the
Booster's own predict (every thread setting) and the scikit-learn estimator's predict_proba / predict
over whole datasets, float32 and float64, row by row and in V1; check NaN (missing) and inf answer as
LightGBM does, wrong width and text are clear errors, and a real server answers and refuses over REST.
"""

from __future__ import annotations

import numpy as np
import pytest

from modelport.errors import InvalidInput
from modelport.repository.entries import build_model
from modelport.settings import ModelParameters, ModelSettings, SettingsError
from modelport.types import InferInput, InferRequest
from modelport.wire import v2_json

lgb = pytest.importorskip("lightgbm")
pytest.importorskip("sklearn")
from sklearn.datasets import load_breast_cancer, load_iris

IRIS_X, IRIS_Y = load_iris(return_X_y=True)
CANCER_X, CANCER_Y = load_breast_cancer(return_X_y=True)


def estimators():
    """name -> (a fitted scikit-learn API estimator, its data)."""
    return {
        "iris": (lgb.LGBMClassifier(n_estimators=20, random_state=0, verbose=-1).fit(IRIS_X, IRIS_Y), IRIS_X),
        "cancer": (lgb.LGBMClassifier(n_estimators=20, random_state=0, verbose=-1).fit(CANCER_X, CANCER_Y), CANCER_X),
        "regression": (lgb.LGBMRegressor(n_estimators=20, random_state=0, verbose=-1).fit(IRIS_X[:, :3], IRIS_X[:, 3]), IRIS_X[:, :3]),
    }


def load(folder, name, **extra):
    settings = ModelSettings(name=name, implementation="lightgbm", parameters=ModelParameters(uri=str(folder), extra=extra), folder=str(folder))
    model = build_model(settings)
    assert model.load()
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = {}
    for name, (est, data) in estimators().items():
        folder = tmp_path_factory.mktemp(name)
        est.booster_.save_model(folder / "model.txt")
        out[name] = (load(folder, name), est, lgb.Booster(model_file=str(folder / "model.txt")), data, folder)
    return out


def v2(array, datatype=None):
    tensor = InferInput("input-0", list(array.shape), datatype or ("FP64" if array.dtype == np.float64 else "FP32"))
    tensor.set_data_from_numpy(array)
    return InferRequest("m", [tensor])


def answer(response):
    (output,) = response.outputs
    assert output.name == "predict"
    return output.as_numpy()


def estimator_answer(est, data):
    """What the scikit-learn estimator says the Booster's predict means."""
    if isinstance(est, lgb.LGBMRegressor):
        return est.predict(data)
    proba = est.predict_proba(data)
    return proba[:, 1] if proba.shape[1] == 2 else proba


def test_the_fast_path_is_taken(models):
    for name in estimators():
        assert models[name][0]._fast is not None, name


@pytest.mark.parametrize("name", list(estimators()))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_whole_dataset_matches_lightgbm(models, name, dtype):
    model, est, booster, data, _ = models[name]
    data = data.astype(dtype)
    got = answer(model.predict(v2(data)))
    expect = booster.predict(data)  # LightGBM's defaults, every core
    assert got.dtype == expect.dtype == np.float64
    np.testing.assert_array_equal(got, expect)
    np.testing.assert_array_equal(got, estimator_answer(est, data))
    for row in data[::9]:
        np.testing.assert_array_equal(answer(model.predict(v2(row[None, :]))), booster.predict(row[None, :]))
    assert model.predict({"instances": data[:5].tolist()}) == {"predictions": booster.predict(data[:5].astype(np.float64)).tolist()}


@pytest.mark.parametrize("name", list(estimators()))
def test_missing_and_infinite_values_answer_as_lightgbm_does(models, name):
    model, _, booster, data, _ = models[name]
    edge = data[:12].copy()
    edge[0, :] = np.nan
    edge[1, 0] = np.nan
    edge[2, -1] = np.inf
    edge[3, 1] = -np.inf
    for array in (edge, edge.astype(np.float32)):
        np.testing.assert_array_equal(answer(model.predict(v2(array))), booster.predict(array))
    ints = data[:3].astype(np.int64)
    np.testing.assert_array_equal(answer(model.predict(v2(ints, "INT64"))), booster.predict(ints))
    # a non-contiguous view takes Booster.predict, and answers the same
    wide = np.repeat(data[:4], 2, axis=1)[:, ::2]
    assert model._fast.predict(wide) is None
    np.testing.assert_array_equal(answer(model.predict(v2(np.ascontiguousarray(wide)))), booster.predict(wide))


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        (v2(np.array([[1.0, 2.0, 3.0]])), r"number of features in data \(3\)"),
        (InferRequest("m", [InferInput("input-0", [1, 4], "BYTES", [b"a", b"b", b"c", b"d"])]), "cannot predict"),
        (v2(np.ones(4)), r"shape \[rows, features\]"),
        ({"instances": [["a", "b", "c", "d"]]}, "cannot predict"),
    ],
)
def test_bad_input_is_a_clear_error(models, request_, words):
    with pytest.raises(InvalidInput, match=words):
        models["iris"][0].predict(request_)


def test_num_threads_setting(models):
    folder = models["iris"][4]
    assert models["iris"][0]._params == {"num_threads": 1}
    every_core = load(folder, "all", num_threads=0)
    assert every_core._params == {"num_threads": 0}
    np.testing.assert_array_equal(answer(every_core.predict(v2(IRIS_X))), answer(models["iris"][0].predict(v2(IRIS_X))))
    for bad in (-1, "2", 1.5, True):
        with pytest.raises(SettingsError, match="num_threads"):
            load(folder, "bad", num_threads=bad)


def test_predict_inline_only_for_a_few_rows_of_a_small_model(models, tmp_path):
    model, _, booster, data, _ = models["iris"]  # 20 rounds × 3 classes = 60 trees
    assert model._inline_rows == 4096 // 60
    np.testing.assert_array_equal(answer(model.predict_inline(v2(data[:3]))), booster.predict(data[:3]))
    assert model.predict_inline({"instances": data[:2].tolist()}) == {"predictions": booster.predict(data[:2]).tolist()}
    assert model.predict_inline(v2(data)) is NotImplemented  # 150 rows: a thread's job
    assert model.predict_inline(v2(np.array([[1.0, 2.0, 3.0]]))) is NotImplemented  # its error comes from a thread
    assert model.predict_inline(v2(data[:2].astype(np.int64), "INT64")) is NotImplemented
    assert model.predict_inline(v2(np.zeros((0, 4)))) is NotImplemented


def test_a_predictor_that_disagrees_with_lightgbm_is_not_used(models):
    from modelport.runtimes._lightgbm_dense import DensePredictor, _SingleRow

    model = models["iris"][0]
    predictor = DensePredictor(lgb, model._booster, model._params)
    assert predictor._agrees_with(model._booster, model._params)
    predictor._num_iteration = 2  # the first two rounds instead of all twenty: caught
    assert not predictor._agrees_with(model._booster, model._params)
    # one row: a single-row predictor that stops early (after the first round) is caught too
    predictor = DensePredictor(lgb, model._booster, model._params)
    early = b"num_threads=1 pred_early_stop=true pred_early_stop_freq=1 pred_early_stop_margin=0.0"
    predictor._single = _SingleRow(lgb.basic, model._booster._handle, early, predictor._num_iteration, 4)
    row = IRIS_X[50:51].copy()
    assert not np.array_equal(predictor.predict(row), model._booster.predict(row))
    assert not predictor._agrees_with(model._booster, model._params)


async def test_rest_answers_and_errors(serve, models):
    model, _, booster, data, _ = models["iris"]
    _, client = await serve([model])
    url = "/v2/models/iris/infer"
    r = await client.post("/v1/models/iris:predict", json={"instances": data.tolist()})
    assert r.status_code == 200 and r.json() == {"predictions": booster.predict(data).tolist()}
    body = {"inputs": [{"name": "input-0", "shape": [150, 4], "datatype": "FP32", "data": data.ravel().tolist()}]}
    r = await client.post(url, json=body)
    assert r.status_code == 200
    assert r.json()["outputs"][0]["data"] == booster.predict(data.astype(np.float32)).ravel().tolist()
    edge = data[:3].astype(np.float32)
    edge[0, 1] = np.nan
    payload, json_len = v2_json.encode_request(v2(edge), binary_inputs=True, binary_outputs=True)
    r = await client.post(url, content=payload, headers={"Inference-Header-Content-Length": str(json_len), "Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    decoded = v2_json.decode_response(r.content, int(r.headers["inference-header-content-length"]))
    np.testing.assert_array_equal(decoded.outputs[0].as_numpy(), booster.predict(edge))
    r = await client.post("/v1/models/iris:predict", json={"instances": [[1.0, 2.0, 3.0]]})
    assert r.status_code == 400 and "number of features" in r.json()["error"]
    r = await client.post("/v1/models/iris:predict", json={"instances": [["a", "b", "c", "d"]]})
    assert r.status_code == 400 and r.json()["error"]
    r = await client.post("/v1/models/iris:predict", json={"instances": [[1.0, 2.0, 3.0, 4.0]]})
    assert r.status_code == 200


def test_one_row_takes_the_single_row_api(models):
    """One row goes through LGBM_BoosterPredictForMatSingleRowFast (parameters parsed once at load)."""
    for name in estimators():
        predictor = models[name][0]._fast
        assert predictor._single is not None, name
        row = models[name][3][:1].copy()
        assert predictor._single.predict(row) is not None


@pytest.mark.parametrize("name", list(estimators()))
def test_random_rows_match_booster_predict(models, name):
    """Random inputs (NaN and values far outside the training range included), one row and several,
    float32 and float64: the runtime's answer is Booster.predict's, value for value, shape for shape."""
    model, _, booster, data, _ = models[name]
    rng = np.random.default_rng(7)
    scale = np.abs(data).max(axis=0) * 2
    for dtype in (np.float64, np.float32):
        batch = (rng.uniform(-1, 1, (64, data.shape[1])) * scale).astype(dtype)
        batch[rng.random(batch.shape) < 0.1] = np.nan
        expect = booster.predict(batch, num_threads=1)
        for rows in (batch[i : i + 1] for i in range(len(batch))):
            got = answer(model.predict(v2(rows)))
            expect_rows = booster.predict(rows)
            assert got.shape == expect_rows.shape
            np.testing.assert_array_equal(got, expect_rows)
        for k in (2, 3, 17, 64):
            np.testing.assert_array_equal(answer(model.predict(v2(batch[:k]))), expect[:k])


def test_threads_share_the_single_row_predictor(models):
    """Hook threads predicting one row at a time, all at once, each get their own row's answer."""
    from concurrent.futures import ThreadPoolExecutor

    model, _, booster, data, _ = models["iris"]
    rows = [data[i : i + 1].astype(np.float32) for i in range(len(data))]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda r: answer(model.predict(v2(r))), rows * 4))
    for row, answer_ in zip(rows * 4, got):
        np.testing.assert_array_equal(answer_, booster.predict(row))

"""A folder of bare model files (no model-settings.json), served as Triton completes configs: the
sub-folder's name is the model, the runtime is detected, numbered sub-folders are versions."""

from __future__ import annotations

import json
import logging

from .conftest import write_onnx, write_sklearn, write_xgboost

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]  # setosa, virginica


def _body(name="input-0"):
    return {"inputs": [{"name": name, "datatype": "FP32", "shape": [2, 4], "data": ROWS}]}


async def test_folder_of_bare_model_files(serve, tmp_path, iris):
    write_sklearn(tmp_path / "skl" / "model.joblib", iris)
    write_xgboost(tmp_path / "xgb" / "model.json", iris)
    write_onnx(tmp_path / "iris" / "1" / "model.onnx", iris)
    write_onnx(tmp_path / "iris" / "2" / "model.onnx", iris)
    (tmp_path / "declared").mkdir()  # a folder with settings is read as before, beside the bare ones
    (tmp_path / "declared" / "model-settings.json").write_text(json.dumps({"name": "declared", "implementation": "sklearn", "parameters": {"uri": "../skl/model.joblib"}}))
    server, client = await serve(model_repository=str(tmp_path))
    index = (await client.post("/v2/repository/index", json={})).json()
    assert [(m["name"], m.get("version"), m["state"]) for m in index] == [
        ("declared", None, "READY"), ("iris", "1", "READY"), ("iris", "2", "READY"), ("skl", None, "READY"), ("xgb", None, "READY"),
    ]
    for name in ("skl", "xgb", "declared"):
        r = await client.post(f"/v2/models/{name}/infer", json=_body())
        assert r.status_code == 200, (name, r.text)
        assert r.json()["outputs"][0]["data"] == [0, 2], name
        assert (await client.post(f"/v1/models/{name}:predict", json={"instances": ROWS})).json() == {"predictions": [0, 2]}
    # versions: each one by its URL, the newest by the plain URL
    for url in ("/v2/models/iris/versions/1/infer", "/v2/models/iris/versions/2/infer", "/v2/models/iris/infer"):
        r = await client.post(url, json=_body())
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == [0, 2]
    assert (await client.post("/v2/models/iris/infer", json=_body())).json()["model_version"] == "2"
    assert (await client.get("/v2/health/ready")).status_code == 200


async def test_one_input_under_any_name(serve, tmp_path, iris):
    """Built-in runtimes with one input take it under any name; metadata keeps the declared name."""
    write_onnx(tmp_path / "iris" / "model.onnx", iris)
    server, client = await serve(model_repository=str(tmp_path))
    meta = (await client.get("/v2/models/iris")).json()
    assert [i["name"] for i in meta["inputs"]] == ["X"]
    for name in ("X", "input-0", "predict"):
        r = await client.post("/v2/models/iris/infer", json=_body(name))
        assert r.status_code == 200, (name, r.text)
    two = {"inputs": [_body("a")["inputs"][0], _body("b")["inputs"][0]]}
    assert (await client.post("/v2/models/iris/infer", json=two)).status_code == 400  # several: names matter


async def test_folder_of_bare_file_at_the_root(serve, tmp_path, iris):
    """KServe's --model_dir layout: the folder holds just a model file; it is served under the folder's name."""
    root = tmp_path / "iris-model"
    write_sklearn(root / "model.joblib", iris)
    server, client = await serve(model_repository=str(root))
    r = await client.post("/v2/models/iris-model/infer", json=_body())
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [0, 2]


async def test_folder_yielding_no_model_is_not_ready_and_says_why(serve, tmp_path, caplog):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.md").write_text("not a model")
    (tmp_path / "weird").mkdir()
    (tmp_path / "weird" / "model.bin").write_bytes(b"\x00\x01")
    with caplog.at_level(logging.WARNING, "modelport"):
        server, client = await serve(model_repository=str(tmp_path))
    r = await client.get("/v2/health/ready")
    assert r.status_code == 503
    reason = r.json()["reason"]
    assert "notes" in reason and "weird" in reason and "no model file found" in reason
    assert "weird" in caplog.text and "No model served from" in caplog.text
    assert (await client.get("/v2/health/live")).status_code == 200


async def test_empty_folder_is_ready_and_logs(serve, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, "modelport"):
        server, client = await serve(model_repository=str(tmp_path))
    assert (await client.get("/v2/health/ready")).status_code == 200
    assert "holds no models" in caplog.text

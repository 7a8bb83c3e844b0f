"""Readiness says which model is not ready and why (REST body; gRPC trailing metadata, ServerReady's
message has only ``ready``), and a models folder that disappears under a running server leaves the
index, the console and the repository API answering without the server's absolute paths (security
probe, Low finding and Nit)."""

from __future__ import annotations

import json
import shutil

import grpc
import grpc.aio

from modelport.wire.grpc import grpc_predict_v2_pb2 as pb
from modelport.wire.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from ..fixture_models import SumModel

V2_BODY = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1.0, 2.0, 3.0]}]}


def _folder(root, name, implementation):
    (root / name).mkdir(parents=True)
    (root / name / "model-settings.json").write_text(json.dumps({"name": name, "implementation": implementation}))


async def test_readiness_names_the_models_that_are_not_ready_and_why(serve, tmp_path):
    models = tmp_path / "models"
    _folder(models, "sum", "tests.fixture_models.SumModel")
    _folder(models, "broken", "tests.fixture_models.BrokenLoadModel")
    server, client = await serve(model_repository=str(models), enable_grpc=True)
    r = await client.get("/v2/health/ready")
    doc = r.json()
    assert r.status_code == 503 and doc["ready"] is False, doc
    assert doc["reason"] == "1 model(s) not ready: broken"
    assert doc["models"] == {"broken": "FAILED: load failed: weights.bin not found"}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        call = GRPCInferenceServiceStub(channel).ServerReady(pb.ServerReadyRequest())
        assert (await call).ready is False
        assert dict(await call.trailing_metadata())["x-modelport-not-ready"] == "1 model(s) not ready: broken"
    # The others serve; once the broken one is unloaded the server is ready again, body as before.
    assert (await client.post("/v2/models/sum/infer", json=V2_BODY)).status_code == 200
    assert (await client.post("/v2/repository/models/broken/unload")).status_code == 200
    r = await client.get("/v2/health/ready")
    assert r.status_code == 200 and r.json() == {"ready": True}


async def test_a_folder_with_no_usable_model_says_so_without_absolute_paths(serve, tmp_path):
    models = tmp_path / "models"
    (models / "junk").mkdir(parents=True)
    (models / "junk" / "notes.txt").write_text("not a model")
    server, client = await serve(model_repository=str(models))
    r = await client.get("/v2/health/ready")
    assert r.status_code == 503 and "yields no model" in r.json()["reason"], r.text
    assert str(tmp_path) not in r.text


async def test_a_models_folder_that_disappears_leaves_the_index_and_console_answering(serve, tmp_path):
    models = tmp_path / "models"
    _folder(models, "sum", "tests.fixture_models.SumModel")
    _folder(models, "other", "tests.fixture_models.SumModel")
    server, client = await serve([SumModel("incode")], model_repository=str(models), enable_ui=True)
    shutil.rmtree(models / "other")  # one model's folder removed
    index = {m["name"]: m for m in (await client.post("/v2/repository/index")).json()}
    assert index["other"]["state"] == "READY" and index["other"]["reason"] == "other/ is gone from the models folder; the copy loaded before serves on"
    assert index["incode"]["reason"] == ""  # built in code: no folder to miss
    shutil.rmtree(models)  # the attack (or an unmounted volume): the whole models folder
    r = await client.post("/v2/repository/index")
    assert r.status_code == 200 and str(tmp_path) not in r.text, r.text
    index = {m["name"]: m for m in r.json()}
    assert index["sum"]["reason"] == "the models folder is missing; the copy loaded before serves on"
    for path in ("/ui", "/ui/api/models"):  # (the console's own paths are redacted by the console's work, F4)
        r = await client.get(path)
        assert r.status_code == 200 and "does not exist" not in r.text, (path, r.text[:300])
    r = await client.post("/v2/repository/models/sum/load")
    assert r.status_code == 400 and r.json() == {"error": "Model sum cannot be loaded: the models folder (model_repository) is missing"}
    # The models loaded before serve on.
    assert (await client.post("/v2/models/sum/infer", json=V2_BODY)).status_code == 200
    assert (await client.get("/v2/health/ready")).status_code == 200


async def test_polling_a_models_folder_that_disappears_keeps_the_models(serve, tmp_path, caplog):
    import asyncio
    import logging
    import time

    models = tmp_path / "models"
    _folder(models, "sum", "tests.fixture_models.SumModel")
    server, client = await serve(model_repository=str(models), model_control_mode="poll", poll_interval=0.05)
    shutil.rmtree(models)
    with caplog.at_level(logging.WARNING, logger="modelport"):
        start, deadline = server._poller.scans, time.monotonic() + 30
        while server._poller.scans < start + 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    assert server._poller.scans >= start + 3
    warnings = [r.getMessage() for r in caplog.records if "models folder is missing" in r.getMessage()]
    assert len(warnings) == 1 and not any(r.levelno >= logging.ERROR for r in caplog.records), caplog.text
    assert (await client.post("/v2/models/sum/infer", json=V2_BODY)).status_code == 200

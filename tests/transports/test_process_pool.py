"""Inference in worker processes: off the server process, a crashed worker replaced."""

from __future__ import annotations

import asyncio
import json
import os

import pytest


def write_pid_model(folder, workers=2, stages=None):
    (folder / "pid").mkdir(parents=True, exist_ok=True)
    settings = {"name": "pid", "implementation": "tests.fixture_models.PidModel", "parallel_workers": workers}
    if stages:
        settings["worker_stages"] = stages
    (folder / "pid" / "model-settings.json").write_text(json.dumps(settings))


def infer_body(value=1.0, burn=0.0):
    return {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [value]}], "parameters": {"burn": burn}}


async def test_inference_runs_in_worker_processes(serve, tmp_path):
    write_pid_model(tmp_path, workers=2)
    server, client = await serve(model_repository=str(tmp_path))
    assert (await client.get("/v2/health/ready")).status_code == 200
    results = await asyncio.gather(*(client.post("/v2/models/pid/infer", json=infer_body(burn=0.2)) for _ in range(4)))
    pids = {r.json()["outputs"][0]["data"][0] for r in results}
    assert os.getpid() not in pids
    assert len(pids) == 2, pids  # both workers took requests
    # V1 goes through the same pool.
    r = await client.post("/v1/models/pid:predict", json={"instances": [[1.0]]})
    assert r.status_code == 200 and r.json()["predictions"][0] in pids


async def test_loop_answers_while_workers_burn_cpu(serve, tmp_path):
    write_pid_model(tmp_path, workers=1)
    server, client = await serve(model_repository=str(tmp_path))
    # One worker, four requests burning 0.6 s each: the worker is busy for over 2 s.
    busy = [asyncio.ensure_future(client.post("/v2/models/pid/infer", json=infer_body(burn=0.6))) for _ in range(4)]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while server.dataplane.in_flight().get("pid", 0) < 4:
        assert loop.time() < deadline, "the requests never reached the data plane"
        await asyncio.sleep(0.01)
    for _ in range(5):
        assert (await client.get("/v2/health/live")).status_code == 200
    # The health answers came while the worker was still burning: the loop never waited for it.
    assert not all(b.done() for b in busy)
    assert all(r.status_code == 200 for r in await asyncio.gather(*busy))


async def test_crashed_worker_fails_cleanly_and_is_replaced(serve, tmp_path):
    write_pid_model(tmp_path, workers=1)
    server, client = await serve(model_repository=str(tmp_path))
    before = (await client.post("/v2/models/pid/infer", json=infer_body())).json()["outputs"][0]["data"][0]
    r = await client.post("/v2/models/pid/infer", json=infer_body(value=-1.0))
    assert r.status_code == 503 and "crashed" in r.json()["error"]
    r = await client.post("/v2/models/pid/infer", json=infer_body())
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"][0] != before  # a new worker process


async def test_model_failing_to_load_in_worker_is_reported(serve, tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model-settings.json").write_text(json.dumps(
        {"name": "broken", "implementation": "tests.fixture_models.BrokenLoadModel", "parallel_workers": 1}))
    server, client = await serve(model_repository=str(tmp_path))
    index = {m["name"]: m for m in (await client.post("/v2/repository/index")).json()}
    assert index["broken"]["state"] == "FAILED" and "weights.bin" in index["broken"]["reason"]


async def test_code_model_is_pickled_to_workers(serve):
    from ..fixture_models import PidModel

    model = PidModel("pid")
    model.parallel_workers = 1
    server, client = await serve([model])
    r = await client.post("/v2/models/pid/infer", json=infer_body())
    assert r.status_code == 200 and r.json()["outputs"][0]["data"][0] != os.getpid()


@pytest.mark.parametrize("stages", [["predict"], ["preprocess", "predict"], ["predict", "postprocess"],
                                    ["preprocess", "predict", "postprocess"]])
async def test_worker_stages_setting(serve, tmp_path, stages):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model-settings.json").write_text(json.dumps(
        {"name": "m", "implementation": "tests.fixture_models.PidStagesModel", "parallel_workers": 1, "worker_stages": stages}))
    server, client = await serve(model_repository=str(tmp_path))
    r = await client.post("/v2/models/m/infer", json=infer_body())
    assert r.status_code == 200, r.text
    doc = r.json()
    pre_pid, predict_pid = doc["outputs"][0]["data"]
    post_pid = doc["parameters"]["post_pid"]
    assert predict_pid != os.getpid()
    assert (pre_pid == predict_pid) == ("preprocess" in stages)
    assert (post_pid == predict_pid) == ("postprocess" in stages)
    assert (pre_pid == os.getpid()) == ("preprocess" not in stages)


async def test_worker_stages_must_be_consecutive(tmp_path):
    from modelport.settings import SettingsError, model_settings_from_dict

    with pytest.raises(SettingsError, match="consecutive"):
        model_settings_from_dict({"name": "m", "worker_stages": ["preprocess", "postprocess"]})
    with pytest.raises(SettingsError, match="worker_stages"):
        model_settings_from_dict({"name": "m", "worker_stages": ["train"]})

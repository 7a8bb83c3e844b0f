"""An MLServer runtime's @custom_handler endpoint is a door like any other under a limit (issue 23: "the
first request, at any door, loads it"): it loads a registered or evicted model on demand, and a call in
progress there counts as in flight, so the model is not evicted under it."""

from __future__ import annotations

import asyncio
import json
import textwrap

import pytest

from .conftest import index_of, sized_model, v2_body, wait_for

RUNTIME = textwrap.dedent('''
    import asyncio

    from modelport.mlserver import MLModel
    from modelport.mlserver.handlers import custom_handler
    from modelport.mlserver.types import InferenceRequest, InferenceResponse

    GATE = {}  # the test's asyncio.Event that holds /slowtalker/wait open


    class Talker(MLModel):
        async def load(self) -> bool:
            self.calls = 0
            return True

        async def predict(self, payload: InferenceRequest) -> InferenceResponse:
            return InferenceResponse(model_name=self.name, outputs=[])

        @custom_handler(rest_path="/talker/count", rest_method="POST")
        async def count(self, body: dict) -> dict:
            self.calls += 1
            return {"words": len(body["text"].split()), "calls": self.calls}

        @custom_handler(rest_path="/talker/wait", rest_method="POST")
        async def wait(self) -> str:
            await GATE["open"].wait()
            return "done"
''')


@pytest.fixture
def folder(tmp_path, monkeypatch):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "residency_talker.py").write_text(RUNTIME)
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    models = tmp_path / "models"
    (models / "talker").mkdir(parents=True)
    (models / "talker" / "model-settings.json").write_text(
        json.dumps({"name": "talker", "implementation": "residency_talker.Talker"}))
    sized_model(models, "other")
    sized_model(models, "third")
    return models


async def test_a_custom_endpoint_loads_its_model_on_demand(serve, folder):
    server, http = await serve(model_repository=str(folder), max_loaded_models=1)
    assert index_of(server)["talker"]["state"] == "REGISTERED"
    r = await http.post("/talker/count", json={"text": "a b c"})
    assert (r.status_code, r.json()) == (200, {"words": 3, "calls": 1}), r.text
    assert index_of(server)["talker"]["state"] == "READY"
    assert (await http.post("/v2/models/other/infer", json=v2_body())).status_code == 200  # evicts talker
    assert index_of(server)["talker"]["state"] == "EVICTED"
    r = await http.post("/talker/count", json={"text": "a b"})  # a fresh instance, loaded again
    assert (r.status_code, r.json()) == (200, {"words": 2, "calls": 1}), r.text
    assert index_of(server)["talker"]["loads"] == 2
    # An explicit unload still wins: not reloaded behind the operator's back.
    assert (await http.post("/v2/repository/models/talker/unload")).status_code == 200
    r = await http.post("/talker/count", json={"text": "a"})
    assert r.status_code == 503 and "unloaded" in r.json()["error"], r.text


async def test_a_call_in_progress_at_a_custom_endpoint_keeps_its_model_resident(serve, folder):
    import residency_talker

    residency_talker.GATE["open"] = gate = asyncio.Event()
    server, http = await serve(model_repository=str(folder), max_loaded_models=2, eviction_wait=0.2)
    waiting = asyncio.ensure_future(http.post("/talker/wait"))
    await wait_for(lambda: server.repository._find("talker", None).in_flight == 1)
    assert (await http.post("/v2/models/other/infer", json=v2_body())).status_code == 200
    # talker is busy and other is idle: room for third is made by evicting other, never talker.
    assert (await http.post("/v2/models/third/infer", json=v2_body())).status_code == 200
    states = {n: m["state"] for n, m in index_of(server).items()}
    assert states == {"talker": "READY", "other": "EVICTED", "third": "READY"}
    gate.set()
    r = await waiting
    assert (r.status_code, r.json()) == (200, "done")
    assert index_of(server)["talker"]["loads"] == 1

"""The MLServer surface a runtime uses beyond predict (issue 21): ``@custom_handler`` endpoints on the
REST door (and who may call them), custom metrics (``mlserver.register``/``mlserver.log``) on the
server's /metrics, ``predict_stream`` through the streaming routes, and an overridden ``metadata()``."""

from __future__ import annotations

import json
import textwrap

import pytest

RUNTIME = textwrap.dedent('''
    from typing import AsyncIterator

    import modelport.mlserver as mlserver
    from modelport.mlserver import MLModel
    from modelport.mlserver.codecs import StringCodec
    from modelport.mlserver.handlers import custom_handler
    from modelport.mlserver.types import InferenceRequest, InferenceResponse, MetadataModelResponse, MetadataTensor


    class Talker(MLModel):
        async def load(self) -> bool:
            self.calls = 0
            mlserver.register("talker_words", "Words per request")
            return True

        async def predict(self, payload: InferenceRequest) -> InferenceResponse:
            text = StringCodec.decode_input(payload.inputs[0])[0]
            mlserver.log(talker_words=len(text.split()))
            return InferenceResponse(model_name=self.name, outputs=[StringCodec.encode_output("out", [text.upper()])])

        async def predict_stream(self, payloads: AsyncIterator[InferenceRequest]) -> AsyncIterator[InferenceResponse]:
            async for payload in payloads:
                for word in StringCodec.decode_input(payload.inputs[0])[0].split():
                    yield InferenceResponse(model_name=self.name, outputs=[StringCodec.encode_output("out", [word])])

        async def metadata(self) -> MetadataModelResponse:
            return MetadataModelResponse(name=self.name, platform="talker", versions=["7"],
                                         inputs=[MetadataTensor(name="text", datatype="BYTES", shape=[-1])])

        @custom_handler(rest_path="/talker/count", rest_method="POST")
        async def count(self, body: dict) -> dict:
            self.calls += 1
            return {"words": len(body["text"].split()), "calls": self.calls}

        @custom_handler(rest_path="/talker/hello", rest_method="GET")
        async def hello(self) -> str:
            return "hello"
''')

TEXT = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["one two three"]}]}


@pytest.fixture
def talker_folder(tmp_path, monkeypatch):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "talker_runtime.py").write_text(RUNTIME)
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    (tmp_path / "models" / "talker").mkdir(parents=True)
    (tmp_path / "models" / "talker" / "model-settings.json").write_text(
        json.dumps({"name": "talker", "implementation": "talker_runtime.Talker"}))
    return tmp_path / "models"


async def test_custom_endpoints(serve, talker_folder):
    server, http = await serve(model_repository=str(talker_folder))
    r = await http.post("/talker/count", json={"text": "a b c"})
    assert (r.status_code, r.json()) == (200, {"words": 3, "calls": 1})
    r = await http.get("/talker/hello")
    assert (r.status_code, r.json()) == (200, "hello")
    r = await http.post("/talker/count", json={"nope": 1})  # FastAPI's own validation of the handler's body
    assert r.status_code == 500 or r.status_code == 422
    r = await http.delete("/talker/count")
    assert r.status_code == 405
    assert (await http.post("/talker/other")).status_code == 404
    assert [(r.method, r.path, r.kind, r.model) for r in sorted(server.custom_routes.routes.values(), key=lambda r: r.path)] == [
        ("POST", "/talker/count", "infer", "talker"), ("GET", "/talker/hello", "infer", "talker")]


async def test_custom_endpoints_need_an_infer_key(serve, talker_folder):
    keys = [{"name": "ops", "key": "admin-1", "scopes": ["infer", "admin"]}, {"name": "app", "key": "infer-1", "scopes": ["infer"]},
            {"name": "elsewhere", "key": "other-1", "scopes": ["infer"], "models": ["other"]}]
    server, http = await serve(model_repository=str(talker_folder), api_keys=keys)
    assert (await http.post("/talker/count", json={"text": "a"})).status_code == 401
    # A key limited to another model may not call this model's endpoints (the route's door names its model).
    r = await http.post("/talker/count", json={"text": "a"}, headers={"authorization": "Bearer other-1"})
    assert r.status_code == 403 and "talker" in r.json()["error"]
    # Each endpoint is a declared door, documented with its kind.
    doc = (await http.get("/openapi.json", headers={"authorization": "Bearer admin-1"})).json()
    assert doc["paths"]["/talker/count"]["post"]["x-modelport-kind"] == "infer"
    assert (await http.post("/talker/count", json={"text": "a"}, headers={"authorization": "Bearer wrong"})).status_code == 401
    for key in ("infer-1", "admin-1"):
        r = await http.post("/talker/count", json={"text": "a"}, headers={"authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text


async def test_custom_endpoint_of_an_unloaded_model_is_not_served(serve, talker_folder):
    server, http = await serve(model_repository=str(talker_folder))
    assert (await http.post("/v2/repository/models/talker/unload")).status_code == 200
    r = await http.post("/talker/count", json={"text": "a"})
    assert r.status_code == 503 and "talker" in r.json()["error"]


async def test_custom_metrics_on_the_servers_metrics(serve, talker_folder):
    server, http = await serve(model_repository=str(talker_folder))
    for _ in range(2):
        assert (await http.post("/v2/models/talker/infer", json=TEXT)).status_code == 200
    metrics = (await http.get("/metrics")).text
    assert 'talker_words_count{model_name="talker",model_version=""} 2.0' in metrics
    assert 'talker_words_sum{model_name="talker",model_version=""} 6.0' in metrics


def test_log_outside_a_model_raises():
    import modelport.mlserver as mlserver
    from modelport.compat.mlserver.metrics import InvalidModelContext

    with pytest.raises(InvalidModelContext):
        mlserver.log(anything=1)


async def test_predict_stream_answers_the_streaming_route(serve, talker_folder):
    server, http = await serve(model_repository=str(talker_folder))
    r = await http.post("/v2/models/talker/infer", json=TEXT)  # infer: predict
    assert r.json()["outputs"][0]["data"] == ["ONE TWO THREE"]
    async with http.stream("POST", "/v2/models/talker/infer_stream", json=TEXT) as r:
        assert r.status_code == 200
        events = [json.loads(line[len("data: "):]) async for line in r.aiter_lines() if line.startswith("data: ")]
    assert [e["outputs"][0]["data"] for e in events] == [["one"], ["two"], ["three"]]
    assert all(e["model_name"] == "talker" and e["id"] for e in events)


async def test_overridden_metadata_is_served(serve, talker_folder):
    server, http = await serve(model_repository=str(talker_folder))
    meta = (await http.get("/v2/models/talker")).json()
    assert meta == {"name": "talker", "versions": ["7"], "platform": "talker",
                    "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}]}  # unset fields left out, as MLServer

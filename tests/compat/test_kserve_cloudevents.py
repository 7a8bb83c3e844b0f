"""The CloudEvents adapter and KServe's body rules, in-process over a real socket: what the model gets,
and what the client gets back (modes, attributes, CE_* environment, bad events)."""

from __future__ import annotations

import json

import pytest

import modelport

CE = {"ce-specversion": "1.0", "ce-id": "i1", "ce-source": "client", "ce-type": "io.test.req"}


class Echo(modelport.Model):
    def __init__(self):
        super().__init__("echo")
        self.ready = True

    def predict(self, payload, headers=None):
        if isinstance(payload, bytes):
            return {"bytes": payload.hex()}
        return {"received": payload}


class Latency(modelport.Model):
    def __init__(self):
        super().__init__("lat")
        self.ready = True

    def predict(self, payload, headers=None):
        return {"predictions": [1]}


async def test_binary_event_with_text_data_reaches_the_model_as_bytes(serve):
    _, client = await serve([Echo()])
    r = await client.post("/v1/models/echo:predict", content=b"hello", headers={**CE, "content-type": "text/plain"})
    assert r.status_code == 200, r.text
    assert r.json() == {"bytes": b"hello".hex()}
    assert r.headers["ce-source"] == "io.kserve.inference.echo"


async def test_binary_event_with_bad_json_is_a_400(serve):
    _, client = await serve([Echo()])
    r = await client.post("/v1/models/echo:predict", content=b"{nope", headers={**CE, "content-type": "application/json"})
    assert r.status_code == 400
    assert "Failed to decode or parse binary json cloudevent" in r.json()["error"]


async def test_binary_event_missing_a_required_attribute_is_not_an_event(serve):
    _, client = await serve([Echo()])
    partial = {k: v for k, v in CE.items() if k != "ce-type"}
    r = await client.post("/v1/models/echo:predict", json={"a": 1}, headers=partial)
    assert r.json() == {"received": {"a": 1}}
    assert not any(k.startswith("ce-") for k in r.headers)


async def test_non_json_content_type_reaches_the_model_as_bytes(serve):
    _, client = await serve([Echo()])
    r = await client.post("/v1/models/echo:predict", content=b"\x89PNG", headers={"content-type": "image/png"})
    assert r.status_code == 200
    assert r.json() == {"bytes": b"\x89PNG".hex()}
    # curl's default (-d without -H) stays JSON, for convenience
    r = await client.post("/v1/models/echo:predict", content=b'{"a": 1}', headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.json() == {"received": {"a": 1}}


async def test_ce_environment_as_in_kserve(serve, monkeypatch):
    monkeypatch.setenv("CE_SOURCE", "my-source")
    monkeypatch.setenv("CE_TYPE", "my-type")
    monkeypatch.setenv("CE_MERGE", "true")
    _, client = await serve([Echo()])
    r = await client.post("/v1/models/echo:predict", json={"a": 1}, headers={**CE, "ce-custom": "kept"})
    assert (r.headers["ce-source"], r.headers["ce-type"], r.headers["ce-custom"]) == ("my-source", "my-type", "kept")
    assert r.headers["ce-id"] != "i1"


async def test_structured_reply_carries_numpy_results(serve):
    import numpy as np

    class Arr(Echo):
        def predict(self, payload, headers=None):
            return {"predictions": np.arange(3)}

    _, client = await serve([Arr()])
    event = {"specversion": "1.0", "id": "1", "source": "s", "type": "t", "time": "2026-12-01T00:00:00Z", "data": {}}
    r = await client.post("/v1/models/echo:predict", content=json.dumps(event),
                          headers={"content-type": "application/cloudevents+json"})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"predictions": [0, 1, 2]}


async def test_latency_logging(serve, caplog):
    _, client = await serve([Latency()], enable_latency_logging=True)
    with caplog.at_level("INFO", logger="modelport.trace"):
        r = await client.post("/v1/models/lat:predict", json={"instances": [1]})
    assert r.status_code == 200
    assert any("model: lat, predict_ms:" in m for m in caplog.messages)

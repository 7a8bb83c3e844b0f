"""The response cache over REST (JSON and binary) and gRPC (raw and typed): one entry for the same
tensors, hits that skip the model, single flight, bypass, metrics, TTL, and unload clearing it."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np

from modelport import InferOutput, InferRequest, InferResponse, Model
from modelport.errors import InvalidInput

from .conftest import V2_BODY, X, grpc_infer


class Doubler(Model):
    """Doubles its input; counts how often it really ran."""

    def __init__(self, name="double", delay=0.0, **controls):
        super().__init__(name)
        self.delay = delay
        self.calls = 0
        self.ready = True
        for key, value in controls.items():
            setattr(self, key, value)

    async def predict(self, payload: InferRequest, headers=None):
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        x = payload.inputs[0].as_numpy()
        if (x < 0).any():
            raise InvalidInput("negative input")
        out = InferOutput("y", list(x.shape), "FP32")
        out.set_data_from_numpy((x * 2).astype(np.float32), binary_data=False)
        return InferResponse(payload.id, self.name, [out])


def binary_body(array: np.ndarray) -> tuple[bytes, dict]:
    header = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": list(array.shape), "parameters": {"binary_data_size": array.nbytes}}]}).encode()
    return header + array.tobytes(), {"inference-header-content-length": str(len(header)), "content-type": "application/octet-stream"}


async def test_json_binary_and_grpc_share_one_entry(both):
    model = Doubler(response_cache={"max_entries": 10})
    server, http, stub = await both([model])
    r = await http.post("/v2/models/double/infer", json={**V2_BODY, "id": "a"})
    assert r.status_code == 200 and r.headers["x-modelport-cache"] == "miss" and r.json()["id"] == "a"
    body, headers = binary_body(X)
    r = await http.post("/v2/models/double/infer", content=body, headers=headers)
    assert r.status_code == 200 and r.headers["x-modelport-cache"] == "hit"
    assert r.json()["outputs"][0]["data"] == [2.0, 4.0, 6.0] and len(r.json()["id"]) == 36  # a new uuid4
    call = stub.ModelInfer(grpc_infer("double", id="g1"))
    reply = await call
    assert dict(await call.trailing_metadata())["x-modelport-cache"] == "hit" and reply.id == "g1"
    reply = await stub.ModelInfer(grpc_infer("double", raw=False))
    assert list(reply.outputs[0].contents.fp32_contents) == [2.0, 4.0, 6.0]  # answered in kind: typed
    assert model.calls == 1
    # Other tensors, parameters or requested outputs are other entries.
    other = {"inputs": [{**V2_BODY["inputs"][0], "data": [1.0, 2.0, 4.0]}]}
    assert (await http.post("/v2/models/double/infer", json=other)).headers["x-modelport-cache"] == "miss"
    assert (await http.post("/v2/models/double/infer", json={**V2_BODY, "parameters": {"p": 1}})).headers["x-modelport-cache"] == "miss"
    assert (await http.post("/v2/models/double/infer", json={**V2_BODY, "outputs": [{"name": "y"}]})).headers["x-modelport-cache"] == "miss"
    assert model.calls == 4
    text = (await http.get("/metrics")).text
    assert 'modelport_cache_hits_total{model="double"} 3.0' in text
    assert 'modelport_cache_misses_total{model="double"} 4.0' in text
    assert 'modelport_cache_entries{model="double"} 4.0' in text
    assert 'modelport_cache_hit_duration_seconds_count{model="double"} 3.0' in text
    assert 'modelport_cache_bytes{model="double"}' in text


async def test_concurrent_identical_misses_run_the_model_once(both):
    model = Doubler(delay=0.3, response_cache=True)
    server, http, stub = await both([model])
    seen = []
    server.dataplane.cache_observer = lambda name, version, hit, seconds: seen.append((name, hit))
    replies = await asyncio.gather(*(http.post("/v2/models/double/infer", json=V2_BODY) for _ in range(6)))
    replies.append(await stub.ModelInfer(grpc_infer("double")))
    assert model.calls == 1
    marks = sorted(r.headers["x-modelport-cache"] for r in replies[:6])
    assert marks == ["hit"] * 5 + ["miss"]
    assert sorted(seen) == [("double", False)] + [("double", True)] * 6
    text = (await http.get("/metrics")).text
    assert 'modelport_requests_total{model="double",protocol="v2"} 7.0' in text  # hits are requests served too
    assert all(r.json()["outputs"][0]["data"] == [2.0, 4.0, 6.0] for r in replies[:6])


async def test_bypass_ttl_and_unload_clear(both):
    model = Doubler(response_cache={"ttl": 1.0})
    server, http, stub = await both([model])
    assert (await http.post("/v2/models/double/infer", json=V2_BODY)).headers["x-modelport-cache"] == "miss"
    r = await http.post("/v2/models/double/infer", json=V2_BODY, headers={"cache-control": "no-cache"})
    assert r.status_code == 200 and "x-modelport-cache" not in r.headers and model.calls == 2
    await stub.ModelInfer(grpc_infer("double"), metadata=(("x-modelport-cache", "bypass"),))
    r = await http.post("/v2/models/double/infer", json={**V2_BODY, "parameters": {"cache": False}})
    assert "x-modelport-cache" not in r.headers and model.calls == 4
    end = time.monotonic() + 30
    while (await http.post("/v2/models/double/infer", json=V2_BODY)).headers["x-modelport-cache"] == "hit":
        assert time.monotonic() < end, "the entry never expired"
        await asyncio.sleep(0.05)
    calls = model.calls
    assert (await http.post("/v2/models/double/infer", json=V2_BODY)).headers["x-modelport-cache"] == "hit"
    assert (await http.post("/v2/repository/models/double/unload")).status_code == 200
    assert 'modelport_cache_entries{model="double"}' not in (await http.get("/metrics")).text
    assert (await http.post("/v2/repository/models/double/load")).status_code == 200
    assert (await http.post("/v2/models/double/infer", json=V2_BODY)).headers["x-modelport-cache"] == "miss"
    assert model.calls == calls + 1


async def test_a_new_version_starts_empty_and_failures_are_not_cached(both, tmp_path):
    for version in ("1", "2"):
        folder = tmp_path / "double" / version
        folder.mkdir(parents=True)
        (folder / "model-settings.json").write_text(json.dumps({
            "name": "double", "implementation": "tests.controls.test_cache.Doubler",
            "parameters": {"version": version}, "response_cache": {"max_entries": 5, "max_bytes": 100000},
        }))
    server, http, stub = await both(model_repository=str(tmp_path))
    assert (await http.post("/v2/models/double/versions/1/infer", json=V2_BODY)).headers["x-modelport-cache"] == "miss"
    assert (await http.post("/v2/models/double/versions/1/infer", json=V2_BODY)).headers["x-modelport-cache"] == "hit"
    assert (await http.post("/v2/models/double/versions/2/infer", json=V2_BODY)).headers["x-modelport-cache"] == "miss"
    bad = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [-1.0]}]}
    for _ in range(2):
        r = await http.post("/v2/models/double/versions/1/infer", json=bad)
        assert r.status_code == 400 and r.json() == {"error": "negative input"}
    assert server.repository.get_model("double", "1").calls == 3  # one good miss, two failures: never cached
    # The repository reloads the model: its entries are gone.
    assert (await http.post("/v2/repository/models/double/load")).status_code == 200
    assert (await http.post("/v2/models/double/versions/1/infer", json=V2_BODY)).headers["x-modelport-cache"] == "miss"


async def test_bad_cache_settings_fail_the_model_not_the_server(both):
    server, http, stub = await both([Doubler("bad", response_cache={"max_entries": 0}), Doubler("good")])
    index = {m["name"]: m for m in (await http.post("/v2/repository/index")).json()}
    assert index["bad"]["state"] == "FAILED" and "response_cache needs max_entries" in index["bad"]["reason"]
    assert (await http.post("/v2/models/good/infer", json=V2_BODY)).status_code == 200


class PerUser(Doubler):
    """An answer that depends on a request header (the probe's echo model): x * 2 + len(x-user)."""

    async def predict(self, payload: InferRequest, headers=None):
        self.calls += 1
        x = payload.inputs[0].as_numpy()
        out = InferOutput("y", list(x.shape), "FP32")
        out.set_data_from_numpy((x * 2 + len((headers or {}).get("x-user", ""))).astype(np.float32), binary_data=False)
        return InferResponse(payload.id, self.name, [out])


async def test_headers_a_model_declares_in_vary_are_part_of_the_key(both):
    """Probe F8: bob got alice's answer. With vary, each user's answer is cached for that user only."""
    model = PerUser("user", response_cache={"vary": ["X-User", "Authorization"]})
    server, http, stub = await both([model, PerUser("plain", response_cache=True)])

    async def ask(name, **headers):
        r = await http.post(f"/v2/models/{name}/infer", json=V2_BODY, headers=headers)
        assert r.status_code == 200, r.text
        return r.headers["x-modelport-cache"], r.json()["outputs"][0]["data"]

    assert await ask("user", **{"x-user": "alice"}) == ("miss", [7.0, 9.0, 11.0])
    assert await ask("user", **{"x-user": "bob"}) == ("miss", [5.0, 7.0, 9.0])  # the attack: not alice's answer
    assert await ask("user", **{"x-user": "bob", "authorization": "Bearer other-user-token"}) == ("miss", [5.0, 7.0, 9.0])
    assert await ask("user") == ("miss", [2.0, 4.0, 6.0])  # absent is its own entry
    assert await ask("user", **{"x-user": ""}) == ("miss", [2.0, 4.0, 6.0])  # and so is empty
    assert await ask("user", **{"x-user": "alice"}) == ("hit", [7.0, 9.0, 11.0])
    assert await ask("user", **{"x-user": "alice", "x-other": "1"}) == ("hit", [7.0, 9.0, 11.0])  # undeclared: not in the key
    reply = await stub.ModelInfer(grpc_infer("user"), metadata=(("x-user", "bob"),))  # gRPC metadata alike
    assert list(reply.raw_output_contents) and np.frombuffer(reply.raw_output_contents[0], np.float32).tolist() == [5.0, 7.0, 9.0]
    assert model.calls == 5
    # Without vary, headers stay out of the key, as before (declared behaviour, in the README).
    assert await ask("plain", **{"x-user": "alice"}) == ("miss", [7.0, 9.0, 11.0])
    assert (await ask("plain", **{"x-user": "bob"}))[0] == "hit"


async def test_bad_vary_fails_the_model_not_the_server(both):
    server, http, stub = await both([Doubler("bad", response_cache={"vary": "x-user"}), Doubler("good", response_cache={"vary": []})])
    index = {m["name"]: m for m in (await http.post("/v2/repository/index")).json()}
    assert index["bad"]["state"] == "FAILED" and "vary must be a list" in index["bad"]["reason"]
    assert (await http.post("/v2/models/good/infer", json=V2_BODY)).status_code == 200


async def test_a_cached_answer_is_served_only_after_the_key_and_its_scopes_pass(both):
    """The cache sits behind the doors' checks: a keyless or wrong-scope request never gets a hit."""
    import grpc

    from .conftest import bearer, grpc_fails

    keys = [{"name": "ops", "key": "admin-k", "scopes": ["infer", "admin"]},
            {"name": "only-other", "key": "other-k", "scopes": ["infer"], "models": ["other"]},
            {"name": "doubler", "key": "double-k", "scopes": ["infer"], "models": ["double"]}]
    model = Doubler(response_cache=True)
    server, http, stub = await both([model, Doubler("other")], api_keys=keys)
    r = await http.post("/v2/models/double/infer", json=V2_BODY, headers=bearer("admin-k"))
    assert r.status_code == 200 and r.headers["x-modelport-cache"] == "miss"
    # The attack: the same tensors with no key, a wrong key and a key scoped to another model.
    for headers, status in (({}, 401), (bearer("wrong"), 401), (bearer("other-k"), 403)):
        r = await http.post("/v2/models/double/infer", json=V2_BODY, headers=headers)
        assert r.status_code == status and "outputs" not in r.json() and "x-modelport-cache" not in r.headers, r.text
        body, binary = binary_body(X)
        r = await http.post("/v2/models/double/infer", content=body, headers={**binary, **headers})
        assert r.status_code == status and "x-modelport-cache" not in r.headers
    await grpc_fails(stub.ModelInfer(grpc_infer("double")), grpc.StatusCode.UNAUTHENTICATED)
    await grpc_fails(stub.ModelInfer(grpc_infer("double"), metadata=(("x-api-key", "other-k"),)), grpc.StatusCode.PERMISSION_DENIED)
    assert model.calls == 1
    # A key that may call the model gets the cached answer.
    r = await http.post("/v2/models/double/infer", json=V2_BODY, headers=bearer("double-k"))
    assert r.status_code == 200 and r.headers["x-modelport-cache"] == "hit" and r.json()["outputs"][0]["data"] == [2.0, 4.0, 6.0]
    assert model.calls == 1

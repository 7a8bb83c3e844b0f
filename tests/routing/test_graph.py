"""Inference graphs: each KServe node kind with local steps (in process) and remote steps (a second
server on its own ports, over REST V2, REST V1 and gRPC), failing steps (hard and soft), the graph in
metadata, the index and the metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelport import InferOutput, InferRequest, InferResponse, Model
from modelport.routing.graph import GraphModel, matches
from modelport.types import InferInput

from .test_shadow import metric


class Affine(Model):
    """x -> x * a + b, output named "x" so that steps chain; V1: instances -> predictions."""

    def __init__(self, name, a=1.0, b=0.0, fail=False):
        super().__init__(name)
        self.a, self.b, self.fail = a, b, fail
        self.ready = True

    async def predict(self, payload, headers=None):
        if self.fail:
            raise RuntimeError("secret internal detail")
        if not isinstance(payload, InferRequest):
            return {"predictions": [v * self.a + self.b for v in payload["instances"]]}
        x = payload.inputs[0].as_numpy().astype(np.float32)
        out = InferOutput("x", list(x.shape), "FP32")
        out.set_data_from_numpy(x * self.a + self.b, binary_data=False)
        return InferResponse(payload.id, self.name, [out])


def body(*values):
    return {"inputs": [{"name": "x", "shape": [len(values)], "datatype": "FP32", "data": list(values)}]}


def data(r, name="x"):
    assert r.status_code == 200, r.text
    return {o["name"]: o["data"] for o in r.json()["outputs"]}[name]


@pytest.fixture
async def servers(serve):
    """(local server, client, remote REST base URL, remote gRPC host:port)."""
    remote, _ = await serve([Affine("double", a=2), Affine("rfail", fail=True)], enable_grpc=True)

    async def start(graphs):
        local, client = await serve([Affine("add1", b=1), Affine("neg", a=-1), Affine("broken", fail=True), *graphs])
        return local, client

    return start, f"http://127.0.0.1:{remote.http_port}", f"127.0.0.1:{remote.grpc_port}"


async def test_sequence_local_and_remote_rest_and_grpc(servers):
    start, rest, grpc = servers
    g = GraphModel("seq", {"nodes": {"root": {"routerType": "Sequence", "steps": [
        {"name": "a", "model": "add1"},
        {"name": "b", "serviceUrl": rest, "model": "double"},
        {"name": "c", "serviceUrl": grpc, "model": "double", "protocol": "grpc-v2"},
        {"name": "d", "model": "add1", "data": "$response"},
    ]}}})
    again = GraphModel("req", {"nodes": {"root": {"routerType": "Sequence", "steps": [
        {"name": "a", "model": "add1"}, {"name": "b", "model": "neg", "data": "$request"}]}}})
    local, client = await start([g, again])
    assert data(await client.post("/v2/models/seq/infer", json=body(1, 2))) == [9.0, 13.0]  # ((x+1)*2*2)+1
    assert data(await client.post("/v2/models/req/infer", json=body(1, 2))) == [-1.0, -2.0]  # $request: the original
    # V1 flows through as V1 JSON, local and remote (predictions feed the next step's instances).
    v1 = GraphModel("seq1", {"nodes": {"root": {"routerType": "Sequence", "steps": [
        {"name": "a", "model": "add1"}, {"name": "b", "serviceUrl": f"{rest}/v1/models/double:predict"}]}}})
    await local.repository.load_model(v1)
    r = await client.post("/v1/models/seq1:predict", json={"instances": [1, 2]})
    assert r.status_code == 200 and r.json() == {"predictions": [4, 6]}


async def test_sequence_condition_stops_the_sequence(servers):
    start, rest, grpc = servers
    g = GraphModel("cond", {"nodes": {"root": {"routerType": "Sequence", "steps": [
        {"name": "a", "model": "add1"},
        {"name": "b", "model": "add1", "condition": "outputs.0.data.#(>10)"},
    ]}}})
    local, client = await start([g])
    assert data(await client.post("/v2/models/cond/infer", json=body(1))) == [2.0]  # stopped after a
    assert data(await client.post("/v2/models/cond/infer", json=body(20))) == [22.0]


async def test_switch_on_the_request(servers):
    start, rest, grpc = servers
    g = GraphModel("sw", {"nodes": {"root": {"routerType": "Switch", "steps": [
        {"name": "big", "serviceUrl": rest, "model": "double", "condition": "inputs.0.data.#(>5)"},
        {"name": "named", "model": "neg", "condition": "parameters.route.#(==\"neg\")"},
        {"name": "tagged", "model": "neg", "condition": "parameters.tag"},
    ]}}})
    local, client = await start([g])
    assert data(await client.post("/v2/models/sw/infer", json=body(1, 10))) == [2.0, 20.0]
    tagged = dict(body(1), parameters={"tag": "x"})
    assert data(await client.post("/v2/models/sw/infer", json=tagged)) == [-1.0]
    r = await client.post("/v2/models/sw/infer", json=body(1))
    assert r.status_code == 404 and "no step of Switch node 'root' matched" in r.json()["error"]
    # V1 conditions read the V1 JSON (KServe's own examples: instances.#(...)).
    v1 = GraphModel("sw1", {"nodes": {"root": {"routerType": "Switch", "steps": [
        {"name": "small", "model": "add1", "condition": "instances.#(<5)#.#"},
        {"name": "other", "model": "neg"}]}}})
    await local.repository.load_model(v1)
    assert (await client.post("/v1/models/sw1:predict", json={"instances": [1]})).json() == {"predictions": [2]}


async def test_ensemble_merges_local_and_remote_answers(servers):
    start, rest, grpc = servers
    g = GraphModel("ens", {"nodes": {"root": {"routerType": "Ensemble", "steps": [
        {"name": "plus", "model": "add1"},
        {"name": "times", "serviceUrl": grpc, "model": "double", "protocol": "grpc-v2"},
        {"name": "sub", "nodeName": "inner"},
    ]}, "inner": {"routerType": "Sequence", "steps": [{"model": "neg"}, {"model": "add1"}]}}})
    local, client = await start([g])
    r = await client.post("/v2/models/ens/infer", json=body(3))
    assert data(r, "plus.x") == [4.0] and data(r, "times.x") == [6.0] and data(r, "sub.x") == [-2.0]
    v1 = GraphModel("ens1", {"nodes": {"root": {"routerType": "Ensemble", "steps": [
        {"name": "plus", "model": "add1"}, {"name": "times", "serviceUrl": rest, "model": "double", "protocol": "v1"}]}}})
    await local.repository.load_model(v1)
    r = await client.post("/v1/models/ens1:predict", json={"instances": [3]})
    assert r.json() == {"plus": {"predictions": [4]}, "times": {"predictions": [6]}}


async def test_splitter_is_an_exact_weighted_choice(servers):
    start, rest, grpc = servers
    g = GraphModel("split", {"nodes": {"root": {"routerType": "Splitter", "steps": [
        {"name": "here", "model": "add1", "weight": 75},
        {"name": "there", "serviceUrl": rest, "model": "double", "weight": 25},
    ]}}})
    local, client = await start([g])
    answers = [data(await client.post("/v2/models/split/infer", json=body(5)))[0] for _ in range(8)]
    assert answers.count(6.0) == 6 and answers.count(10.0) == 2


async def test_failing_steps_hard_and_soft(servers):
    start, rest, grpc = servers

    def seq(name, *steps):
        return GraphModel(name, {"nodes": {"root": {"routerType": "Sequence", "steps": list(steps)}}})

    graphs = [
        seq("hard", {"name": "first", "model": "add1"}, {"name": "explodes", "model": "broken", "dependency": "Hard"}),
        seq("soft", {"name": "explodes", "model": "broken"}, {"name": "then", "model": "add1"}),
        seq("remote_hard", {"name": "far", "serviceUrl": rest, "model": "rfail", "dependency": "hard"}),
        seq("missing", {"name": "ghost", "model": "nope", "dependency": "Hard"}),
        GraphModel("ens_soft", {"nodes": {"root": {"routerType": "Ensemble", "steps": [
            {"name": "ok", "model": "add1"}, {"name": "bad", "serviceUrl": grpc, "model": "rfail", "protocol": "grpc-v2"}]}}}),
    ]
    local, client = await start(graphs)
    r = await client.post("/v2/models/hard/infer", json=body(1))
    assert r.status_code == 500 and "step 'explodes' failed" in r.json()["error"]
    assert "secret internal detail" not in r.json()["error"]
    r = await client.post("/v2/models/soft/infer", json=body(1))
    assert data(r) == [2.0] and "explodes" in r.json()["parameters"]["graph_errors"]
    r = await client.post("/v2/models/remote_hard/infer", json=body(1))
    assert r.status_code == 500 and "step 'far' failed" in r.json()["error"]
    r = await client.post("/v2/models/missing/infer", json=body(1))
    assert r.status_code == 404 and "step 'ghost' failed" in r.json()["error"]
    r = await client.post("/v2/models/ens_soft/infer", json=body(1))
    assert data(r, "ok.x") == [2.0] and [o["name"] for o in r.json()["outputs"]] == ["ok.x"]
    assert "bad" in r.json()["parameters"]["graph_errors"]
    assert (await client.post("/v2/models/add1/infer", json=body(1))).status_code == 200  # serving on
    text = (await client.get("/metrics")).text
    assert metric(text, "modelport_graph_step_duration_seconds_count", graph="hard", step="explodes", outcome="error") == 1
    assert metric(text, "modelport_graph_step_duration_seconds_count", graph="hard", step="first", outcome="ok") == 1


async def test_graph_from_model_settings_in_metadata_and_index(serve, tmp_path):
    (tmp_path / "g").mkdir()
    graph = {"nodes": {"root": {"routerType": "Sequence", "steps": [{"name": "one", "model": "add1"}, {"name": "two", "model": "add1"}]}}}
    (tmp_path / "g" / "model-settings.json").write_text(json.dumps({"name": "g", "graph": graph}))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model-settings.json").write_text(json.dumps(
        {"name": "bad", "implementation": "graph", "graph": {"nodes": {"root": {"routerType": "Loop", "steps": [{"model": "x"}]}}}}))
    server, client = await serve([Affine("add1", b=1)], model_repository=str(tmp_path))
    assert data(await client.post("/v2/models/g/infer", json=body(1))) == [3.0]
    meta = (await client.get("/v2/models/g")).json()
    assert meta["platform"] == "graph" and meta["graph"] == graph
    index = {m["name"]: m for m in (await client.post("/v2/repository/index", json={})).json()}
    assert index["g"]["graph"] == {"root": ["one", "two"]}
    assert index["bad"]["state"] == "FAILED" and "routerType must be one of" in index["bad"]["reason"]


def test_condition_subset():
    req = InferRequest("m", [InferInput("x", [3], "FP32", np.array([1, 7, 3], dtype=np.float32)),
                             InferInput("s", [1], "BYTES", np.array([b"cat"], dtype=object))], parameters={"k": {"v": 1}})
    assert matches(req, "inputs.#(name==\"x\").data.#(>5)")
    assert not matches(req, "inputs.#(name==\"x\").data.#(>9)")
    assert matches(req, "inputs.#(name%\"s*\")")
    assert matches(req, "inputs.1.data.#(==\"cat\")")
    assert matches(req, "parameters.k.v")
    assert not matches(req, "parameters.k.w")
    assert matches({"instances": [{"age": 30}]}, "instances.#(age>=30)")
    assert not matches({"instances": [{"age": 3}]}, "instances.#(age>=30)")
    assert matches({"a.b": 1}, "a\\.b")

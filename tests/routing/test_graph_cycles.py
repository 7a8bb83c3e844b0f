"""Graphs that would recurse (security probe F2, F12): a graph calling itself, or graphs calling each
other, fail at load naming the cycle while the others serve; a loop through remote steps is cut at
MAX_DEPTH graphs with a clear 400; a failing Soft step answers without outputs and logs a warning."""

from __future__ import annotations

import json
import logging

from modelport.routing.graph import MAX_DEPTH, GraphModel

from .test_graph import Affine, body, data


def seq(name, *steps, kind="Sequence"):
    return GraphModel(name, {"nodes": {"root": {"routerType": kind, "steps": list(steps)}}})


async def index(client):
    return {m["name"]: m for m in (await client.post("/v2/repository/index", json={})).json()}


async def test_self_and_mutual_cycles_fail_at_load_and_the_rest_serve(serve, tmp_path):
    def folder(name, graph):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model-settings.json").write_text(json.dumps({"name": name, "graph": graph}))

    def nodes(kind, *targets):
        return {"nodes": {"root": {"routerType": kind, "steps": [{"name": f"s{i}", "model": t} for i, t in enumerate(targets)]}}}

    folder("self", nodes("Sequence", "self"))  # the probe's cyc: a Soft step naming its own graph
    folder("ping", nodes("Ensemble", "pong", "pong"))  # the probe's mutual Ensemble
    folder("pong", nodes("Ensemble", "ping", "ping"))
    folder("a", nodes("Sequence", "add1", "b"))  # a longer loop through an ordinary step
    folder("b", nodes("Sequence", "c"))
    folder("c", nodes("Sequence", "a"))
    folder("fine", nodes("Sequence", "add1", "add1"))
    server, client = await serve([Affine("add1", b=1)], model_repository=str(tmp_path))
    models = await index(client)
    assert models["self"]["state"] == "FAILED" and "cycle (self -> self)" in models["self"]["reason"]
    assert models["ping"]["state"] == "FAILED" and "cycle (ping -> pong -> ping)" in models["ping"]["reason"]
    assert models["pong"]["state"] == "FAILED" and "cycle (pong -> ping -> pong)" in models["pong"]["reason"]
    assert "cycle (b -> c -> a -> b)" in models["b"]["reason"] and models["c"]["state"] == "FAILED"
    for name in ("self", "ping", "a"):  # the attack: one request to each
        r = await client.post(f"/v2/models/{name}/infer", json=body(1))
        assert r.status_code == 503 and "cycle" in r.json()["error"], r.text
    # The others serve, and a reload through the repository API refuses the cycle again.
    assert data(await client.post("/v2/models/fine/infer", json=body(1))) == [3.0]
    r = await client.post("/v2/repository/models/self/load")
    assert r.status_code != 200 and "cycle (self -> self)" in r.json()["error"]
    assert data(await client.post("/v2/models/add1/infer", json=body(1))) == [2.0]


async def test_graphs_built_in_code_calling_each_other_fail_at_load(serve):
    ping = seq("ping", {"name": "p1", "model": "pong"}, {"name": "p2", "model": "pong"}, kind="Ensemble")
    pong = seq("pong", {"name": "q1", "model": "ping"}, kind="Ensemble")
    ok = seq("ok", {"name": "one", "model": "add1"})
    server, client = await serve([Affine("add1", b=1), ping, pong, ok])
    models = await index(client)
    assert models["ping"]["state"] == "FAILED" and "ping -> pong -> ping" in models["ping"]["reason"]
    assert (await client.post("/v2/models/pong/infer", json=body(1))).status_code == 503
    assert data(await client.post("/v2/models/ok/infer", json=body(1))) == [2.0]


async def test_a_loop_through_remote_steps_is_cut_at_the_depth_bound(serve):
    server, client = await serve([Affine("add1", b=1)], enable_grpc=True)
    me = f"http://127.0.0.1:{server.http_port}"
    graphs = [
        seq("loop", {"name": "again", "serviceUrl": me, "model": "loop"}),  # Soft (the default)
        seq("loop_hard", {"name": "again", "serviceUrl": me, "model": "loop_hard", "dependency": "Hard"}),
        seq("loop_grpc", {"name": "again", "serviceUrl": f"127.0.0.1:{server.grpc_port}", "model": "loop_grpc", "protocol": "grpc-v2"}),
        seq("loop_v1", {"name": "again", "serviceUrl": f"{me}/v1/models/loop_v1:predict"}),
    ]
    for g in graphs:  # remote steps are not followed at load: this loads, and the bound holds at run time
        assert (await server.repository.load_model(g)).state.value == "READY"
    for name in ("loop", "loop_hard", "loop_grpc"):
        r = await client.post(f"/v2/models/{name}/infer", json=body(1, 2))
        assert r.status_code == 400, r.text
        assert f"more than {MAX_DEPTH} graphs" in r.json()["error"] and "outputs" not in r.json()
    r = await client.post("/v1/models/loop_v1:predict", json={"instances": [1]})
    assert r.status_code == 400 and f"more than {MAX_DEPTH} graphs" in r.json()["error"]
    # A client cannot lift the bound with a negative depth of its own.
    r = await client.post("/v2/models/loop/infer", json=body(1), headers={"x-modelport-graph-depth": "-1000"})
    assert r.status_code == 400
    assert data(await client.post("/v2/models/add1/infer", json=body(1))) == [2.0]
    assert (await client.get("/v2/health/live")).status_code == 200


async def test_a_failing_soft_step_answers_without_outputs_and_logs_it(serve, caplog):
    only = seq("only", {"name": "explodes", "model": "broken"})
    ens = seq("ens", {"name": "bad1", "model": "broken"}, {"name": "bad2", "model": "broken"}, kind="Ensemble")
    server, client = await serve([Affine("add1", b=1), Affine("broken", fail=True), only, ens])
    with caplog.at_level(logging.WARNING, logger="modelport"):
        r = await client.post("/v2/models/only/infer", json=body(1, 2, 3, 4))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["outputs"] == [] and "explodes" in doc["parameters"]["graph_errors"]  # not the inputs echoed
    assert any("explodes" in rec.getMessage() and "secret internal detail" in rec.getMessage()
               for rec in caplog.records if rec.levelno == logging.WARNING)
    r = await client.post("/v2/models/ens/infer", json=body(1))
    assert r.status_code == 200 and r.json()["outputs"] == []
    r = await client.post("/v1/models/only:predict", json={"instances": [1, 2]})
    assert r.status_code == 200 and r.json()["predictions"] == [] and "explodes" in r.json()["graph_errors"]
    assert data(await client.post("/v2/models/add1/infer", json=body(1))) == [2.0]

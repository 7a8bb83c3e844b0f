"""The REST door over a real socket: every endpoint, every error, and the server still serving after."""

from __future__ import annotations

import asyncio
import gzip
import struct

import numpy as np
import orjson
import pytest

from modelport import ModelRepository
from modelport.wire import v2_json

from ..gated_models import AsyncGatedModel, GatedModel
from ..fixture_models import (
    AsyncSlowModel,
    BrokenLoadModel,
    DeclaredModel,
    EchoModel,
    ExplainModel,
    FailingModel,
    HeadersModel,
    PickyModel,
    PrePostModel,
    SlowModel,
    SumModel,
)


def v2(name, shape, datatype, data, **extra):
    return {"name": name, "shape": shape, "datatype": datatype, "data": data, **extra}


async def assert_still_serving(client):
    r = await client.post("/v2/models/sum/infer", json={"inputs": [v2("x", [1, 2], "FP32", [1, 2])]})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [3.0]


@pytest.fixture
async def api(serve):
    models = [SumModel("sum"), EchoModel(), FailingModel(), PickyModel(), HeadersModel(), PrePostModel(),
              ExplainModel("explainer"), DeclaredModel()]
    server, client = await serve(models)
    return client


# -- health, metadata, V1 listing --------------------------------------------------------------

async def test_health_and_server_metadata(api):
    assert (await api.get("/")).json() == {"status": "alive"}
    assert (await api.get("/v2/health/live")).json() == {"live": True}
    r = await api.get("/v2/health/ready")
    assert r.status_code == 200 and r.json() == {"ready": True}
    meta = (await api.get("/v2")).json()
    assert meta["name"] == "modelport" and meta["version"] and "binary_tensor_data" in meta["extensions"]


async def test_model_metadata_and_ready(api):
    meta = (await api.get("/v2/models/declared")).json()
    assert meta["name"] == "declared"
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}]
    assert (await api.get("/v2/models/sum/ready")).json() == {"name": "sum", "ready": True}
    r = await api.get("/v2/models/nope/ready")
    assert r.status_code == 404 and "nope" in r.json()["error"]


async def test_v1_listing(api):
    assert set((await api.get("/v1/models")).json()["models"]) >= {"sum", "echo", "failing"}
    assert (await api.get("/v1/models/sum")).json() == {"name": "sum", "ready": True}
    assert (await api.get("/v1/models/nope")).status_code == 404


# -- V2 inference ------------------------------------------------------------------------------

async def test_v2_infer_echoes_id_and_parameters(api):
    body = {"id": "req-7", "parameters": {"trace": "on", "n": 3}, "inputs": [v2("x", [2, 2], "FP32", [[1, 2], [3, 4]])]}
    r = await api.post("/v2/models/echo/infer", json=body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["id"] == "req-7" and doc["model_name"] == "echo"
    assert doc["parameters"] == {"trace": "on", "n": 3}
    assert doc["outputs"][0] == {"name": "x", "datatype": "FP32", "shape": [2, 2], "data": [1.0, 2.0, 3.0, 4.0]}


DATATYPE_CASES = [
    ("BOOL", [True, False, True]),
    ("UINT8", [0, 7, 255]),
    ("UINT16", [0, 7, 65535]),
    ("UINT32", [0, 7, 2**32 - 1]),
    ("UINT64", [0, 7, 2**64 - 1]),
    ("INT8", [-128, 0, 127]),
    ("INT16", [-32768, 0, 32767]),
    ("INT32", [-(2**31), 0, 2**31 - 1]),
    ("INT64", [-(2**63), 0, 2**63 - 1]),
    ("FP16", [0.5, -1.5, 2.0]),
    ("FP32", [0.25, -1.5, 3.0]),
    ("FP64", [0.1, -1e300, 3.0]),
    ("BYTES", ["a", "héllo", ""]),
]


@pytest.mark.parametrize("datatype,data", DATATYPE_CASES)
async def test_every_datatype_json(api, datatype, data):
    r = await api.post("/v2/models/echo/infer", json={"inputs": [v2("t", [3], datatype, data)]})
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["datatype"] == datatype and out["shape"] == [3]
    assert out["data"] == data


@pytest.mark.parametrize("datatype,data", DATATYPE_CASES)
async def test_every_datatype_binary_both_ways(api, datatype, data):
    from modelport.types import InferInput, InferRequest, to_np_dtype

    array = np.array(data, dtype=to_np_dtype(datatype)) if datatype != "BYTES" else np.array(
        [d.encode() for d in data], dtype=object)
    tensor = InferInput("t", [3], datatype)
    tensor.set_data_from_numpy(array)
    body, json_len = v2_json.encode_request(InferRequest("echo", [tensor]), binary_inputs=True, binary_outputs=True)
    assert json_len is not None
    r = await api.post("/v2/models/echo/infer", content=body,
                       headers={"Inference-Header-Content-Length": str(json_len), "Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    response = v2_json.decode_response(r.content, int(r.headers["inference-header-content-length"]))
    np.testing.assert_array_equal(response.outputs[0].as_numpy(), array)
    assert response.outputs[0].datatype == datatype


async def test_bytes_binary_wire_format(api):
    # BYTES travel as 4-byte little-endian lengths, each followed by the element.
    raw = struct.pack("<I", 2) + b"hi" + struct.pack("<I", 0)
    head = orjson.dumps({"inputs": [{"name": "t", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": len(raw)}}],
                         "outputs": [{"name": "t", "parameters": {"binary_data": True}}]})
    r = await api.post("/v2/models/echo/infer", content=head + raw, headers={"Inference-Header-Content-Length": str(len(head))})
    assert r.status_code == 200, r.text
    json_len = int(r.headers["inference-header-content-length"])
    assert r.content[json_len:] == raw
    assert orjson.loads(r.content[:json_len])["outputs"][0]["parameters"]["binary_data_size"] == len(raw)


async def test_requested_outputs(api):
    body = {"inputs": [v2("a", [1], "INT32", [1]), v2("b", [1], "INT32", [2])], "outputs": [{"name": "b"}]}
    r = await api.post("/v2/models/echo/infer", json=body)
    assert [o["name"] for o in r.json()["outputs"]] == ["b"]
    body["outputs"] = [{"name": "zzz"}]
    r = await api.post("/v2/models/echo/infer", json=body)
    assert r.status_code == 400 and "zzz" in r.json()["error"]
    # Declared outputs are checked before the model runs.
    r = await api.post("/v2/models/declared/infer",
                       json={"inputs": [v2("x", [1, 3], "FP32", [1, 2, 3])], "outputs": [{"name": "nope"}]})
    assert r.status_code == 400 and "nope" in r.json()["error"]


async def test_declared_inputs_are_checked(api):
    cases = {
        "unknown input": {"inputs": [v2("y", [1, 3], "FP32", [1, 2, 3])]},
        "datatype": {"inputs": [v2("x", [1, 3], "INT32", [1, 2, 3])]},
        "shape": {"inputs": [v2("x", [1, 2], "FP32", [1, 2])]},
        "missing": {"inputs": []},
    }
    for what, body in cases.items():
        r = await api.post("/v2/models/declared/infer", json=body)
        assert r.status_code == 400, what
        assert "x" in r.json()["error"] or "y" in r.json()["error"], what
    r = await api.post("/v2/models/declared/infer", json={"inputs": [v2("x", [2, 3], "FP32", [1, 2, 3, 4, 5, 6])]})
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [6.0, 15.0]


async def test_response_headers_from_model(api):
    r = await api.post("/v2/models/headers/infer", json={"inputs": [v2("x", [1], "INT64", [1])]},
                       headers={"x-request-tag": "abc"})
    assert r.status_code == 200
    assert r.headers["x-model-says"] == "hello" and r.headers["x-echo"] == "abc"


async def test_gzip_request_body(api):
    body = gzip.compress(orjson.dumps({"inputs": [v2("x", [1, 2], "FP32", [1, 2])]}))
    r = await api.post("/v2/models/sum/infer", content=body, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [3.0]
    r = await api.post("/v2/models/sum/infer", content=b"not gzip", headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400 and "gzip" in r.json()["error"]
    r = await api.post("/v2/models/sum/infer", content=b"{}", headers={"Content-Encoding": "br"})
    assert r.status_code == 400 and "br" in r.json()["error"]


# -- V1 ----------------------------------------------------------------------------------------

async def test_v1_predict_and_hooks(api):
    r = await api.post("/v1/models/sum:predict", json={"instances": [[1, 2], [3, 4]]})
    assert r.status_code == 200 and r.json() == {"predictions": [3, 7]}
    r = await api.post("/v1/models/prepost:predict", json={"instances": [[1, 2]]})
    assert r.json() == {"predictions": [6.0], "postprocessed": True}


async def test_v1_explain(api):
    r = await api.post("/v1/models/explainer:explain", json={"instances": [[1, 2]]})
    assert r.status_code == 200 and r.json() == {"explanations": ["feature 0 matters"]}
    r = await api.post("/v1/models/sum:explain", json={"instances": [[1, 2]]})
    assert r.status_code == 501 and "explain" in r.json()["error"]


# -- errors: each gets a clear status and message, and the server keeps serving -----------------

ERROR_CASES = [
    # (method, path, body bytes, expected status, text expected in the error)
    ("POST", "/v2/models/sum/infer", b"{not json", 400, "not valid JSON"),
    ("POST", "/v2/models/sum/infer", b"[1, 2]", 400, "JSON object"),
    ("POST", "/v2/models/sum/infer", b"{}", 400, "inputs"),
    ("POST", "/v2/models/sum/infer", b'{"inputs": [{"name": "x", "shape": [2], "data": [1, 2]}]}', 400, "datatype"),
    ("POST", "/v2/models/sum/infer", b'{"inputs": [{"name": "x", "datatype": "FP32", "data": [1]}]}', 400, "shape"),
    ("POST", "/v2/models/sum/infer", b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1]}]}', 400, "data"),
    # The codec's common case (JSON data, no parameters) and the cases just beside it.
    ("POST", "/v2/models/sum/infer", b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "parameters": null}]}', 400, "data"),
    ("POST", "/v2/models/sum/infer", b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1], "parameters": []}]}', 400, "parameters"),
    ("POST", "/v2/models/sum/infer", b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}, {"name": "x", "datatype": "FP32", "shape": [1], "data": [2]}]}', 400, "unique"),
    ("POST", "/v2/models/sum/infer", b'{"inputs": [{"name": "x", "datatype": "FP99", "shape": [1], "data": [1]}]}', 400, "FP99"),
    ("POST", "/v2/models/sum/infer", b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [3], "data": [1, 2]}]}', 400, "'x'"),
    ("POST", "/v2/models/sum/infer", b'{"inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": ["a"]}]}', 400, "'x'"),
    ("POST", "/v2/models/sum/infer", b'{"inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": [1.5]}]}', 400, "'x'"),
    ("POST", "/v2/models/sum/infer", b'{"id": 5, "inputs": []}', 400, "id"),
    ("POST", "/v2/models/nope/infer", b'{"inputs": []}', 404, "nope"),
    ("POST", "/v2/models/sum/versions/9/infer", b'{"inputs": []}', 404, "version 9"),
    ("GET", "/v2/models/nope", b"", 404, "nope"),
    ("POST", "/v2/models/failing/infer", b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}', 500, "Model failing failed while serving the request; see the server log (request id "),
    ("POST", "/v2/models/picky/infer", b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}', 400, "picky"),
    ("POST", "/v1/models/sum:predict", b"{oops", 400, "not valid JSON"),
    ("POST", "/v1/models/sum:predict", b'{"instances": 3}', 400, "instances"),
    ("POST", "/v1/models/sum:predict", b'{"foo": 1}', 400, "instances"),
    ("POST", "/v1/models/nope:predict", b'{"instances": [[1]]}', 404, "nope"),
    ("POST", "/v1/models/failing:predict", b'{"instances": [[1]]}', 500, "Model failing failed while serving the request"),
    ("POST", "/v1/models/sum:frobnicate", b"{}", 404, "Not found"),
    ("GET", "/v3/anything", b"", 404, "Not found"),
    ("GET", "/v2/models/sum/infer", b"", 405, "POST"),
    ("POST", "/v2/health/live", b"", 405, "GET"),
    ("POST", "/v2/repository/models/nope/unload", b"", 404, "nope"),
    ("POST", "/v2/repository/models/nope/load", b"", 404, "nope"),
    ("POST", "/v2/repository/index", b"[]", 400, "object"),
    ("POST", "/v2/repository/index", b'{"ready": {}}', 400, "true or false"),
]


@pytest.mark.parametrize("method,path,body,status,text", ERROR_CASES, ids=[f"{c[0]} {c[1]} {c[3]}" for c in ERROR_CASES])
async def test_errors(api, method, path, body, status, text):
    r = await api.request(method, path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    doc = r.json()
    assert set(doc) == {"error"} and text in doc["error"]
    assert "Traceback" not in r.text
    await assert_still_serving(api)


async def test_model_exception_logged_not_leaked(api, caplog):
    r = await api.post("/v2/models/failing/infer", json={"inputs": [v2("x", [1], "FP32", [1])]})
    assert r.status_code == 500
    assert "Traceback" not in r.text and 'File "' not in r.text
    assert any(rec.exc_info for rec in caplog.records if rec.name == "modelport")


async def test_binary_errors(api):
    head = orjson.dumps({"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "parameters": {"binary_data_size": 8}}]})
    cases = [
        (head + b"\0" * 4, {"Inference-Header-Content-Length": str(len(head))}, "overruns"),
        (head + b"\0" * 12, {"Inference-Header-Content-Length": str(len(head))}, "no tensor claims"),
        (head + b"\0" * 8, {}, "Inference-Header-Content-Length"),
        (head + b"\0" * 8, {"Inference-Header-Content-Length": "abc"}, "integer"),
        (head + b"\0" * 8, {"Inference-Header-Content-Length": "100000"}, "does not fit"),
    ]
    for body, headers, text in cases:
        r = await api.post("/v2/models/sum/infer", content=body, headers=headers)
        assert r.status_code == 400 and text in r.json()["error"], (text, r.text)
    await assert_still_serving(api)


async def test_payload_too_large(serve):
    server, client = await serve([SumModel("sum")], max_request_size=1024)
    big = orjson.dumps({"inputs": [v2("x", [1, 600], "FP32", [1.0] * 600)]})
    assert len(big) > 1024
    r = await client.post("/v2/models/sum/infer", content=big)
    assert r.status_code == 413 and "1024" in r.json()["error"]

    # Chunked upload (no Content-Length): refused while streaming, without reading it all.
    sent = 0

    async def chunks():
        nonlocal sent
        for _ in range(1000):
            sent += 512
            yield b" " * 512

    r = await client.post("/v2/models/sum/infer", content=chunks())
    assert r.status_code == 413 and sent == 512 * 1000
    await assert_still_serving(client)


async def test_not_ready_model_and_server(serve):
    server, client = await serve([SumModel("sum"), BrokenLoadModel("broken")])
    r = await client.get("/v2/health/ready")
    assert r.status_code == 503 and r.json()["ready"] is False and r.json()["reason"] == "1 model(s) not ready: broken"
    assert r.json()["models"]["broken"].startswith("FAILED: load failed: ") and "weights.bin" in r.json()["models"]["broken"]
    r = await client.post("/v2/models/broken/infer", json={"inputs": [v2("x", [1], "FP32", [1])]})
    assert r.status_code == 503 and "weights.bin" in r.json()["error"]
    index = (await client.post("/v2/repository/index")).json()
    broken = next(m for m in index if m["name"] == "broken")
    assert broken["state"] == "FAILED" and "weights.bin" in broken["reason"]
    await assert_still_serving(client)


# -- versions and the repository extension ------------------------------------------------------

def write_model(folder, name, version=None, cls="SumModel", extra=None):
    import json

    target = folder / name / (version or "")
    target.mkdir(parents=True, exist_ok=True)
    settings = {"name": name, "implementation": f"tests.fixture_models.{cls}", **(extra or {})}
    if version:
        settings["parameters"] = {"version": version}
    (target / "model-settings.json").write_text(json.dumps(settings))


async def test_versions(serve, tmp_path):
    write_model(tmp_path, "sum", "1")
    write_model(tmp_path, "sum", "2")
    write_model(tmp_path, "sum", "10")
    server, client = await serve(model_repository=str(tmp_path))
    body = {"inputs": [v2("x", [1, 2], "FP32", [1, 2])]}
    for version in ("1", "2", "10"):
        r = await client.post(f"/v2/models/sum/versions/{version}/infer", json=body)
        assert r.status_code == 200 and r.json()["model_version"] == version
        assert (await client.get(f"/v2/models/sum/versions/{version}/ready")).json()["ready"] is True
        assert (await client.get(f"/v2/models/sum/versions/{version}")).json()["versions"] == [version]
    # No version: the highest, in natural order.
    assert (await client.post("/v2/models/sum/infer", json=body)).json()["model_version"] == "10"
    r = await client.post("/v2/models/sum/versions/3/infer", json=body)
    assert r.status_code == 404
    index = (await client.post("/v2/repository/index")).json()
    assert [(m["name"], m["version"], m["state"]) for m in index] == [("sum", "1", "READY"), ("sum", "2", "READY"), ("sum", "10", "READY")]


async def test_repository_load_unload(serve, tmp_path):
    write_model(tmp_path, "sum")
    write_model(tmp_path, "echo2", cls="EchoModel")
    server, client = await serve(model_repository=str(tmp_path))
    body = {"inputs": [v2("x", [1, 2], "FP32", [1, 2])]}
    assert (await client.post("/v2/models/sum/infer", json=body)).status_code == 200

    assert (await client.post("/v2/repository/models/sum/unload")).status_code == 200
    r = await client.post("/v2/models/sum/infer", json=body)
    assert r.status_code == 503 and r.json() == {"error": "Model sum is not ready: unloaded"}
    index = {m["name"]: m for m in (await client.post("/v2/repository/index")).json()}
    assert index["sum"]["state"] == "UNAVAILABLE"
    ready_only = (await client.post("/v2/repository/index", json={"ready": True})).json()
    assert [m["name"] for m in ready_only] == ["echo2"]
    # An unloaded model no longer counts against readiness.
    assert (await client.get("/v2/health/ready")).status_code == 200

    assert (await client.post("/v2/repository/models/sum/load")).status_code == 200
    assert (await client.post("/v2/models/sum/infer", json=body)).status_code == 200

    # A model added to the folder at run time can be loaded without a restart.
    write_model(tmp_path, "late", cls="SumModel")
    assert (await client.post("/v2/repository/models/late/load")).status_code == 200
    assert (await client.post("/v2/models/late/infer", json=body)).status_code == 200


async def test_load_failure_is_reported_and_others_serve(serve, tmp_path):
    write_model(tmp_path, "sum")
    write_model(tmp_path, "broken", cls="BrokenLoadModel")
    server, client = await serve(model_repository=str(tmp_path))
    index = {m["name"]: m for m in (await client.post("/v2/repository/index")).json()}
    assert index["broken"]["state"] == "FAILED" and "weights.bin" in index["broken"]["reason"]
    assert (await client.get("/v2/health/ready")).status_code == 503
    r = await client.post("/v2/repository/models/broken/load")
    assert r.status_code == 500 and "weights.bin" in r.json()["error"]
    # A model added at run time whose class does not import: reported, and nothing else stops.
    write_model(tmp_path, "missing", cls="NoSuchClass")
    r = await client.post("/v2/repository/models/missing/load")
    assert r.status_code == 500 and "NoSuchClass" in r.json()["error"]
    index = {m["name"]: m for m in (await client.post("/v2/repository/index")).json()}
    assert index["missing"]["state"] == "FAILED" and "NoSuchClass" in index["missing"]["reason"]
    await assert_still_serving(client)


async def test_unimportable_model_class_stops_startup(tmp_path):
    from modelport.settings import SettingsError

    from ..helpers import make_server

    write_model(tmp_path, "sum")
    write_model(tmp_path, "missing", cls="NoSuchClass")
    server = make_server(model_repository=str(tmp_path))
    with pytest.raises(SettingsError, match="NoSuchClass"):
        await server.start_async()
    await server.stop(grace_period=0)


async def test_unload_waits_for_in_flight(serve):
    slow = SlowModel("slow", delay=0.5)
    server, client = await serve([SumModel("sum"), slow], model_repository=None)
    infer = asyncio.ensure_future(client.post("/v2/models/slow/infer", json={"inputs": [v2("x", [1], "FP32", [1])]}))
    while slow.active == 0:
        await asyncio.sleep(0.01)
    r = await client.post("/v2/repository/models/slow/unload")
    assert r.status_code == 200
    assert infer.done(), "unload returned before the in-flight request finished"
    assert (await infer).status_code == 200
    assert (await client.post("/v2/models/slow/infer", json={"inputs": [v2("x", [1], "FP32", [1])]})).status_code == 503


async def test_code_registered_model_can_be_reloaded(serve):
    repo = ModelRepository()
    server, client = await serve([SumModel("sum")], registered_models=repo)
    assert repo.get_model("sum") is not None and "sum" in repo.get_models()
    assert await repo.is_model_ready("sum")
    assert (await client.post("/v2/repository/models/sum/unload")).status_code == 200
    assert not await repo.is_model_ready("sum")
    assert (await client.post("/v2/repository/models/sum/load")).status_code == 200
    await assert_still_serving(client)


# -- sync models never block the loop ------------------------------------------------------------

async def test_health_answers_while_sync_model_busy(serve):
    gated = GatedModel("slow")  # stays in predict until released: health must answer meanwhile
    server, client = await serve([SumModel("sum"), gated])
    infer = asyncio.ensure_future(client.post("/v2/models/slow/infer", json={"inputs": [v2("x", [1], "FP32", [1])]}))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while gated.active == 0:
        assert loop.time() < deadline, "the request never reached the model"
        await asyncio.sleep(0.01)
    assert (await client.get("/v2/health/live")).status_code == 200
    assert gated.active == 1 and not infer.done()
    gated.release.set()
    assert (await infer).status_code == 200


async def test_async_and_sync_models_serve_concurrently(serve):
    # The model answers only once all ten are inside it together: run one at a time, none would answer.
    gated = AsyncGatedModel("aslow", open_at=10)
    server, client = await serve([gated, SumModel("sum")])
    body = {"inputs": [v2("x", [1], "FP32", [1])]}
    results = await asyncio.gather(*(client.post("/v2/models/aslow/infer", json=body) for _ in range(10)))
    assert all(r.status_code == 200 for r in results)
    assert gated.max_active == 10


# -- metrics, OpenAPI, docs -----------------------------------------------------------------------

async def test_metrics(api):
    await api.post("/v2/models/sum/infer", json={"inputs": [v2("x", [1, 2], "FP32", [1, 2])]})
    await api.post("/v1/models/prepost:predict", json={"instances": [[1, 2]]})
    await api.post("/v2/models/failing/infer", json={"inputs": [v2("x", [1], "FP32", [1])]})
    r = await api.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'modelport_requests_total{model="sum",protocol="v2"} 1.0' in text
    assert 'modelport_request_failures_total{code="internal",model="failing",protocol="v2"} 1.0' in text
    for stage in ("preprocess", "predict", "postprocess"):
        assert f'modelport_stage_duration_seconds_count{{model="prepost",stage="{stage}"}} 1.0' in text
    assert 'modelport_requests_in_flight{model="sum"} 0.0' in text


async def test_metrics_can_be_turned_off(serve):
    server, client = await serve([SumModel("sum")], enable_metrics=False)
    assert (await client.get("/metrics")).status_code == 404
    await assert_still_serving(client)


async def test_openapi_and_docs(api):
    doc = (await api.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    for path in ("/v2/health/live", "/v2/models/{model_name}/infer", "/v2/models/{model_name}/versions/{model_version}/infer",
                 "/v2/repository/index", "/v1/models/{model_name}:predict", "/metrics"):
        assert path in doc["paths"], path
    r = await api.get("/docs")
    assert r.status_code == 200 and "openapi.json" in r.text


async def test_docs_can_be_turned_off(serve):
    server, client = await serve([SumModel("sum")], enable_docs=False)
    assert (await client.get("/docs")).status_code == 404
    assert (await client.get("/openapi.json")).status_code == 404


async def test_every_response_has_content_length(api):
    for method, path in [("GET", "/"), ("GET", "/v2"), ("GET", "/metrics"), ("GET", "/nope")]:
        r = await api.request(method, path)
        assert int(r.headers["content-length"]) == len(r.content)


async def test_live_but_not_ready_while_models_load():
    import httpx

    from ..helpers import make_server

    class SlowLoad(SumModel):
        def load(self):
            import time

            time.sleep(1.0)
            return super().load()

    server = make_server()
    starting = asyncio.ensure_future(server.start_async([SlowLoad("slowload")]))
    while server.http_port is None or server._http is None or not server._http.started:
        await asyncio.sleep(0.01)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as client:
        assert (await client.get("/v2/health/live")).status_code == 200
        assert (await client.get("/v2/health/ready")).status_code == 503
        assert not starting.done()
        await starting
        assert (await client.get("/v2/health/ready")).status_code == 200
    await server.stop(grace_period=1)

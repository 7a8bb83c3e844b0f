"""The model repository and its admin routes under hostile or careless use: unloaded models are
"not ready" everywhere, one broken settings file blocks only itself, error bodies hold no server
paths or Python internals, and a web page cannot drive the admin API."""

from __future__ import annotations

import json
import logging

import grpc
import pytest

from modelport.controls.origin import same_origin
from modelport.wire.grpc import grpc_predict_v2_pb2 as pb

from .conftest import Doors

X = {"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 2.0]}
V2_BODY = {"inputs": [X]}


def write(folder, name, settings: dict | str) -> None:
    (folder / name).mkdir(parents=True, exist_ok=True)
    text = settings if isinstance(settings, str) else json.dumps({"name": name, **settings})
    (folder / name / "model-settings.json").write_text(text)


@pytest.fixture
async def repo(tmp_path, caplog):
    """A server over a models folder: sum and echo load; "bad" points at a file that is not there."""
    from ..helpers import make_server

    models = tmp_path / "models"
    write(models, "sum", {"implementation": "tests.fixture_models.SumModel"})
    write(models, "echo", {"implementation": "tests.fixture_models.EchoModel"})
    write(models, "bad", {"implementation": "sklearn", "parameters": {"uri": "does-not-exist.joblib"}})
    server = make_server(enable_grpc=True, model_repository=str(models))
    with caplog.at_level(logging.CRITICAL, logger="modelport"):  # "bad" logs its failure, as it should
        await server.start_async()
    doors = Doors(server)
    doors.models = models
    try:
        yield doors
    finally:
        await doors.aclose()
        await server.stop(grace_period=2)


# -- defect 6: known but unloaded is 503 "not ready" everywhere; 404 only for names never known ---------
async def test_unloaded_model_is_not_ready_on_every_path(repo):
    http = repo.http
    assert (await http.post("/v2/repository/models/sum/unload")).status_code == 200
    for method, path, body in [
        ("POST", "/v2/models/sum/infer", V2_BODY),
        ("POST", "/v1/models/sum:predict", {"instances": [[1, 2]]}),
        ("GET", "/v2/models/sum", None),
        ("GET", "/v1/models/sum", None),
    ]:
        r = await http.request(method, path, json=body)
        assert r.status_code == 503 and "not ready" in r.json()["error"], (path, r.status_code, r.text)
    r = await http.get("/v2/models/sum/ready")
    assert r.status_code == 503 and r.json()["ready"] is False
    for call in (
        repo.stub.ModelInfer(pb.ModelInferRequest(model_name="sum")),
        repo.stub.ModelMetadata(pb.ModelMetadataRequest(name="sum")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE and "not ready" in info.value.details()
    assert (await repo.stub.ModelReady(pb.ModelReadyRequest(name="sum"))).ready is False
    # Never known: 404 / NOT_FOUND on the same paths.
    for method, path, body in [
        ("POST", "/v2/models/ghost/infer", V2_BODY),
        ("POST", "/v1/models/ghost:predict", {"instances": [[1, 2]]}),
        ("GET", "/v2/models/ghost", None),
        ("GET", "/v1/models/ghost", None),
    ]:
        assert (await http.request(method, path, json=body)).status_code == 404, path
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await repo.stub.ModelInfer(pb.ModelInferRequest(model_name="ghost"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await http.post("/v2/repository/models/sum/load")).status_code == 200
    await repo.still_serving()


async def test_model_given_to_start_is_not_ready_before_it_loads_never_404():
    """The race behind the flaky test_retries_setting: the listener is up a moment before start_async
    begins loading the models it was given. A request in that moment must get 503 "not ready"
    (clients retry it), never 404 "not found" (they do not). Here the request is sent exactly then."""
    import httpx

    from ..fixture_models import SumModel
    from ..helpers import make_server

    server = make_server()
    load_models = server._load_models
    seen = []

    async def request_first(*args):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
            r = await http.post("/v2/models/m/infer", json=V2_BODY)
            seen.append((r.status_code, r.json()))
        await load_models(*args)

    server._load_models = request_first
    try:
        await server.start_async([SumModel("m")])
        assert seen == [(503, {"error": "Model m is not ready: loading"})]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
            assert (await http.post("/v2/models/m/infer", json=V2_BODY)).status_code == 200
    finally:
        await server.stop(grace_period=1)


# -- defect 9: one malformed model-settings.json blocks only itself ---------------------------------------
async def test_broken_sibling_settings_do_not_block_loading_others(repo):
    write(repo.models, "typo", '{"name":')
    for name in ("sum", "echo"):
        r = await repo.http.post(f"/v2/repository/models/{name}/load")
        assert r.status_code == 200, r.text
    write(repo.models, "late", {"implementation": "tests.fixture_models.SumModel"})
    assert (await repo.http.post("/v2/repository/models/late/load")).status_code == 200
    r = await repo.http.post("/v2/models/late/infer", json=V2_BODY)
    assert r.status_code == 200
    # The broken one is reported for itself, in the index and on its own load, without server paths.
    index = {m["name"]: m for m in (await repo.http.post("/v2/repository/index")).json()}
    assert index["typo"]["state"] == "FAILED" and "typo/model-settings.json" in index["typo"]["reason"]
    r = await repo.http.post("/v2/repository/models/typo/load")
    assert r.status_code == 400 and "typo/model-settings.json" in r.json()["error"]
    for text in (index["typo"]["reason"], r.json()["error"]):
        assert str(repo.models) not in text
    grpc_index = await repo.stub.RepositoryIndex(pb.RepositoryIndexRequest())
    assert any(m.name == "typo" and m.state == "FAILED" for m in grpc_index.models)
    await repo.still_serving()


# -- defect 10: error bodies hold no server paths and no Python internals ---------------------------------
async def test_failure_reasons_hold_no_server_paths(repo):
    root = str(repo.models.parent)
    index = {m["name"]: m for m in (await repo.http.post("/v2/repository/index")).json()}
    reason = index["bad"]["reason"]
    assert index["bad"]["state"] == "FAILED" and "does-not-exist.joblib" in reason and root not in reason
    r = await repo.http.post("/v2/models/bad/infer", json=V2_BODY)
    assert r.status_code == 503 and "does-not-exist.joblib" in r.text and root not in r.text
    r = await repo.http.post("/v2/repository/models/bad/load")
    assert r.status_code == 500 and "does-not-exist.joblib" in r.text and root not in r.text
    assert "StorageError" not in r.text
    grpc_index = await repo.stub.RepositoryIndex(pb.RepositoryIndexRequest())
    assert all(root not in m.reason for m in grpc_index.models)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await repo.stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="bad"))
    assert root not in info.value.details() and "does-not-exist.joblib" in info.value.details()
    await repo.still_serving()


async def test_unexpected_failure_says_where_to_look_and_logs_the_rest(doors, caplog):
    r = await doors.http.post("/v2/models/failing/infer", json=V2_BODY, headers={"x-request-id": "req-42"})
    assert r.status_code == 500
    assert r.json() == {"error": "Model failing failed while serving the request; see the server log (request id req-42)"}
    status, message = await doors.send("grpc-raw", "failing", X, b"\0" * 8)
    assert status == grpc.StatusCode.INTERNAL and message.startswith("Model failing failed while serving the request")
    assert "RuntimeError" not in message and "secret" not in message
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 2 and "req-42" in logged[0].getMessage()
    assert all("secret internal detail" in str(r.exc_info[1]) for r in logged)
    caplog.clear()
    await doors.still_serving()


# -- defect 11: admin POSTs take JSON or nothing, and only from the server's own origin -------------------
@pytest.mark.parametrize("path", ["/v2/repository/models/sum/unload", "/v2/repository/models/sum/load", "/v2/repository/index"])
async def test_admin_refuses_cross_site_requests(repo, path):
    http = repo.http
    host = f"127.0.0.1:{repo.server.http_port}"
    form = {"content-type": "application/x-www-form-urlencoded"}
    for headers, body in [(form, b"a=b"), ({"content-type": "text/plain"}, b"{}"), ({"content-type": "multipart/form-data; boundary=x"}, b"--x--")]:
        r = await http.post(path, content=body, headers=headers)
        assert r.status_code == 415 and "application/json" in r.json()["error"], r.text
    for origin in ("http://evil.example", "null", f"http://{host}.evil.example", "http://127.0.0.1:1", "http://127.0.0.1"):
        r = await http.post(path, headers={"origin": origin, "content-type": "application/json"}, content=b"{}")
        assert r.status_code == 403 and "origin" in r.json()["error"], (origin, r.text)
    r = await http.post(path, headers={**form, "origin": "http://evil.example"})  # no body: still foreign
    assert r.status_code == 403
    # Still there: the refused unloads did nothing.
    assert (await http.post("/v2/models/sum/infer", json=V2_BODY)).status_code == 200
    # Same origin, JSON, an empty body or no content type (programmatic clients) all pass.
    assert (await http.post(path, headers={"origin": f"http://{host}"}, json={})).status_code == 200
    assert (await http.post(path)).status_code == 200
    assert (await http.post(path, headers=form)).status_code == 200  # a form type with no body carries nothing
    assert (await http.post(path, content=b"{}")).status_code == 200
    if path.endswith("unload"):
        assert (await http.post("/v2/repository/models/sum/load")).status_code == 200
    await repo.still_serving()


def test_same_origin_rule():
    assert same_origin("http://localhost:8080", "localhost:8080")
    assert same_origin("http://LOCALHOST", "localhost:80")
    assert same_origin("https://example.com", "example.com")
    assert same_origin("http://[::1]:8080", "[::1]:8080")
    assert not same_origin("https://example.com", "example.com:80")
    assert not same_origin("http://localhost:8081", "localhost:8080")
    assert not same_origin("http://evil.example", "localhost:8080")
    assert not same_origin("null", "localhost:8080")
    assert not same_origin("file://", "localhost")
    assert not same_origin("http://localhost:99999", "localhost:99999")

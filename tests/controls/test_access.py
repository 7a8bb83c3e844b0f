"""API keys, scopes, model lists, protected health/metrics, the repository switch, name traversal,
CORS, and the clients sending a key: over REST and gRPC on real sockets."""

from __future__ import annotations

import hashlib
import json

import grpc
import httpx
import pytest

from modelport.client import AsyncGRPCClient, AsyncRESTClient, GRPCClient, RESTClient, RESTConfig
from modelport.client.errors import ClientError
from modelport.settings import SettingsError, load_server_settings
from modelport.wire.grpc import grpc_predict_v2_pb2 as pb

from ..fixture_models import SumModel
from ..helpers import make_server, server_in_thread
from .conftest import V2_BODY, X, bearer, grpc_fails, grpc_infer

ADMIN, READER = "admin-secret-1", "reader-secret-2"
KEYS = [
    {"name": "ops", "key": ADMIN, "scopes": ["infer", "admin"]},
    {"name": "reader", "sha256": hashlib.sha256(READER.encode()).hexdigest(), "scopes": ["infer"], "models": ["sum"]},
]
MISSING = "Missing API key: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"


def models():
    return [SumModel("sum"), SumModel("other")]


def md(key: str):
    return (("authorization", f"Bearer {key}"),)


async def test_missing_and_invalid_keys_are_401_then_a_good_key_works(both):
    server, http, stub = await both(models(), api_keys=KEYS)
    r = await http.post("/v2/models/sum/infer", json=V2_BODY)
    assert r.status_code == 401 and r.json() == {"error": MISSING}
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = await http.post("/v2/models/sum/infer", json=V2_BODY, headers=bearer("wrong"))
    assert r.status_code == 401 and r.json() == {"error": "Invalid API key"}
    err = await grpc_fails(stub.ModelInfer(grpc_infer()), grpc.StatusCode.UNAUTHENTICATED)
    assert err.details() == MISSING
    err = await grpc_fails(stub.ModelInfer(grpc_infer(), metadata=md("wrong")), grpc.StatusCode.UNAUTHENTICATED)
    assert err.details() == "Invalid API key"
    # The same server serves keys that are right, by either header, over both doors.
    r = await http.post("/v2/models/sum/infer", json=V2_BODY, headers=bearer(READER))
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [6.0]
    r = await http.post("/v2/models/sum/infer", json=V2_BODY, headers={"x-api-key": ADMIN})
    assert r.status_code == 200
    reply = await stub.ModelInfer(grpc_infer(), metadata=md(READER))
    assert reply.model_name == "sum"


async def test_scope_and_model_list_are_403(both, tmp_path):
    server, http, stub = await both(models(), api_keys=KEYS)
    r = await http.post("/v2/repository/models/sum/unload", headers=bearer(READER))
    assert r.status_code == 403 and r.json() == {"error": "API key 'reader' lacks the 'admin' scope"}
    err = await grpc_fails(
        stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="sum"), metadata=md(READER)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert err.details() == "API key 'reader' lacks the 'admin' scope"
    denied = "API key 'reader' may not call model 'other'"
    r = await http.post("/v2/models/other/infer", json=V2_BODY, headers=bearer(READER))
    assert r.status_code == 403 and r.json() == {"error": denied}
    r = await http.get("/v2/models/other", headers=bearer(READER))
    assert r.status_code == 403 and r.json() == {"error": denied}
    r = await http.post("/v1/models/other:predict", json={"instances": [[1, 2]]}, headers=bearer(READER))
    assert r.status_code == 403 and r.json() == {"error": denied}
    err = await grpc_fails(stub.ModelInfer(grpc_infer("other"), metadata=md(READER)), grpc.StatusCode.PERMISSION_DENIED)
    assert err.details() == denied
    err = await grpc_fails(
        stub.ModelMetadata(pb.ModelMetadataRequest(name="other"), metadata=md(READER)), grpc.StatusCode.PERMISSION_DENIED
    )
    assert err.details() == denied
    # The admin key may do both; the reader still serves its own model afterwards.
    assert (await http.post("/v2/models/other/infer", json=V2_BODY, headers=bearer(ADMIN))).status_code == 200
    assert (await http.post("/v2/repository/index", headers=bearer(ADMIN))).status_code == 200
    assert (await http.post("/v2/models/sum/infer", json=V2_BODY, headers=bearer(READER))).status_code == 200
    # Every model's statistics, not a model called "stats": for the reader, the models it may call.
    stats = (await http.get("/v2/models/stats", headers=bearer(READER))).json()["model_stats"]
    assert [m["name"] for m in stats] == ["sum"]
    assert (await stub.ModelInfer(grpc_infer("other"), metadata=md(ADMIN))).model_name == "other"


async def test_health_and_metrics_are_public_unless_protected(both):
    server, http, stub = await both(models(), api_keys=KEYS)
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/sum/ready", "/metrics", "/"):
        assert (await http.get(path)).status_code == 200, path
    assert (await stub.ServerReady(pb.ServerReadyRequest())).ready
    assert (await http.get("/v2")).status_code == 401  # metadata is not health

    server, http, stub = await both(models(), api_keys=KEYS, auth_health=True, auth_metrics=True)
    for path in ("/v2/health/live", "/v2/health/ready", "/metrics"):
        r = await http.get(path)
        assert r.status_code == 401 and r.json() == {"error": MISSING}, path
        assert (await http.get(path, headers=bearer(READER))).status_code == 200, path
    await grpc_fails(stub.ServerReady(pb.ServerReadyRequest()), grpc.StatusCode.UNAUTHENTICATED)
    assert (await stub.ServerReady(pb.ServerReadyRequest(), metadata=md(READER))).ready


async def test_repository_api_off_and_admin_only(both):
    server, http, stub = await both(models(), api_keys=KEYS, repository_api="off")
    off = "The repository API is turned off on this server (repository_api: off)"
    r = await http.post("/v2/repository/models/sum/load", headers=bearer(ADMIN))
    assert r.status_code == 403 and r.json() == {"error": off}
    err = await grpc_fails(
        stub.RepositoryIndex(pb.RepositoryIndexRequest(), metadata=md(ADMIN)), grpc.StatusCode.PERMISSION_DENIED
    )
    assert err.details() == off
    assert (await http.post("/v2/models/sum/infer", json=V2_BODY, headers=bearer(ADMIN))).status_code == 200

    # With no keys at all the switch still works (no auth, repository off).
    server, http, stub = await both(models(), repository_api="off")
    assert (await http.post("/v2/repository/index")).status_code == 403
    assert (await http.post("/v2/models/sum/infer", json=V2_BODY)).status_code == 200
    with pytest.raises(SettingsError, match="'admin' needs api_keys"):
        make_server(repository_api="admin")


async def test_model_names_never_resolve_outside_the_repository(both, tmp_path):
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    for folder, name in ((repo / "sum", "sum"), (outside, "outside")):
        folder.mkdir(parents=True)
        (folder / "model-settings.json").write_text(json.dumps({"name": name, "implementation": "tests.fixture_models.SumModel"}))
    server, http, stub = await both(model_repository=str(repo))
    bad = ["../outside", "..\\outside", "..", "sum/../../outside"]
    for name in bad:
        quoted = httpx.URL("/v2/repository/models/x/load").copy_with(raw_path=f"/v2/repository/models/{name.replace('/', '%2F').replace('.', '%2E')}/load".encode())
        r = await http.post(quoted)
        assert r.status_code in (400, 404), (name, r.status_code, r.text)
        err = await grpc_fails(
            stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name=name)), grpc.StatusCode.INVALID_ARGUMENT
        )
        assert err.details().startswith(f"Invalid model name {name!r}")
    r = await http.post("/v2/repository/models/%2E%2E/load")
    assert r.status_code == 400 and r.json()["error"].startswith("Invalid model name '..'")
    index = (await http.post("/v2/repository/index")).json()
    assert [m["name"] for m in index] == ["sum"]  # nothing from outside was ever found or loaded
    assert (await http.post("/v2/repository/models/sum/load")).status_code == 200


async def test_cors_preflight_and_responses(both):
    server, http, stub = await both(models(), cors_origins="https://app.example, https://ops.example")
    pre = {"origin": "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization"}
    r = await http.options("/v2/models/sum/infer", headers=pre)
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "authorization" in r.headers["access-control-allow-headers"]
    r = await http.options("/v2/models/sum/infer", headers={**pre, "origin": "https://evil.example"})
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    r = await http.post("/v2/models/sum/infer", json=V2_BODY, headers={"origin": "https://ops.example"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://ops.example"
    r = await http.post("/v2/models/sum/infer", json=V2_BODY, headers={"origin": "https://evil.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers

    server, http, stub = await both(models())  # off by default
    r = await http.post("/v2/models/sum/infer", json=V2_BODY, headers={"origin": "https://app.example"})
    assert "access-control-allow-origin" not in r.headers


def test_keys_from_a_file_and_from_the_environment(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps([{"name": "f", "sha256": hashlib.sha256(b"from-file").hexdigest(), "scopes": ["infer"]}]))
    s = load_server_settings(env={"MODELPORT_API_KEYS": "env-key-1,env-key-2", "MODELPORT_API_KEYS_PATH": str(path)})
    from modelport.controls import KeyStore, load_keys

    store = KeyStore(load_keys(s.api_keys, s.api_keys_path))
    assert store.authenticate({"authorization": "Bearer from-file"}).name == "f"
    assert store.authenticate({"x-api-key": "env-key-2"}).scopes == {"infer", "admin"}
    s = load_server_settings(env={"MODELPORT_API_KEYS": json.dumps([{"key": "k", "scopes": ["admin"]}])})
    assert KeyStore(load_keys(s.api_keys)).authenticate({"x-api-key": "k"}).scopes == {"admin"}
    with pytest.raises(SettingsError, match="scopes must be"):
        load_keys([{"key": "k", "scopes": ["root"]}])
    with pytest.raises(SettingsError, match="sha256 must be 64 hex digits"):
        load_keys([{"sha256": "abc"}])


async def test_async_clients_send_the_key(both):
    server, http, stub = await both(models(), api_keys=KEYS)
    url = f"127.0.0.1:{server.http_port}"
    async with AsyncRESTClient(RESTConfig(api_key=READER, retries=0)) as client:
        assert (await client.infer(url, V2_BODY, "sum")).outputs[0].as_numpy().tolist() == [6.0]
    async with AsyncRESTClient(RESTConfig(retries=0)) as client:
        with pytest.raises(ClientError, match="Missing API key"):
            await client.infer(url, V2_BODY, "sum")
    async with AsyncGRPCClient(f"127.0.0.1:{server.grpc_port}", api_key=READER, retries=0) as client:
        from modelport.types import InferInput, InferRequest

        request = InferRequest("sum", [InferInput("x", [1, 3], "FP32", X)])
        assert (await client.infer(request)).outputs[0].as_numpy().tolist() == [6.0]


def test_sync_clients_and_cli_send_the_key(capsys, monkeypatch, tmp_path):
    from modelport.cli import main
    from modelport.types import InferInput, InferRequest

    with server_in_thread(models(), api_keys=KEYS, enable_grpc=True) as server:
        url = f"127.0.0.1:{server.http_port}"
        with RESTClient(RESTConfig(api_key=READER, retries=0)) as client:
            assert client.infer(url, V2_BODY, "sum").outputs[0].as_numpy().tolist() == [6.0]
        with GRPCClient(f"127.0.0.1:{server.grpc_port}", api_key=READER, retries=0) as client:
            assert client.infer(InferRequest("sum", [InferInput("x", [1, 3], "FP32", X)])).model_name == "sum"
        body = tmp_path / "body.json"
        body.write_text(json.dumps(V2_BODY))
        assert main(["infer", "sum", "--url", f"http://{url}", "--json", str(body)]) == 1
        assert "Missing API key" in capsys.readouterr().err
        assert main(["infer", "sum", "--url", f"http://{url}", "--json", str(body), "--api-key", READER]) == 0
        assert json.loads(capsys.readouterr().out)["outputs"][0]["data"] == [6.0]
        monkeypatch.setenv("MODELPORT_API_KEY", READER)
        assert main(["infer", "sum", "--grpc", f"127.0.0.1:{server.grpc_port}", "--json", str(body)]) == 0
        assert json.loads(capsys.readouterr().out)["model_name"] == "sum"


async def test_grpc_streams_are_checked_when_opened_and_per_message(both):
    server, http, stub = await both(models(), api_keys=KEYS)

    async def requests(*names):
        for name in names:
            yield grpc_infer(name)

    call = stub.ModelStreamInfer(requests("sum"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in call:
            pass
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED and info.value.details() == MISSING
    answers = [a async for a in stub.ModelStreamInfer(requests("sum", "sum"), metadata=md(READER))]
    assert [a.infer_response.model_name for a in answers] == ["sum", "sum"] and not answers[0].error_message
    seen = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for answer in stub.ModelStreamInfer(requests("sum", "other"), metadata=md(READER)):
            seen.append(answer.infer_response.model_name)
    assert seen == ["sum"]
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert info.value.details() == "API key 'reader' may not call model 'other'"


async def test_cors_listed_origins_pass_the_admin_origin_check(both):
    server, http, stub = await both(models(), cors_origins=["https://ops.example", "*"])
    r = await http.post("/v2/repository/index", headers={"origin": "https://ops.example"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    r = await http.post("/v2/repository/index", headers={"origin": "https://evil.example"})  # "*" is not enough
    assert r.status_code == 403 and "not allowed" in r.json()["error"]
    server, http, stub = await both(models())
    assert (await http.post("/v2/repository/index", headers={"origin": "https://ops.example"})).status_code == 403

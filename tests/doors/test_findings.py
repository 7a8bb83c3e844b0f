"""Each finding of the 2026-12-05 security probe that the door declaration fixes: the attack first,
then a normal request that succeeds (F1, F3, F5, F10; real servers, real clients)."""

from __future__ import annotations

import grpc
import numpy as np
import openai
import pytest

from modelport.wire.grpc import grpc_predict_v2_pb2 as pb
from modelport.wire.grpc import model_repository_pb2 as mr
from modelport.wire.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from modelport.wire.grpc.model_repository_pb2_grpc import ModelRepositoryServiceStub

from ..grpc_helpers import infer_request
from .conftest import ADMIN, INFER, KEYS, V2_BODY, key_headers, key_metadata

X = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
SUM_ONLY = "sum-only-key-0004"
TOY_ONLY = "toy-only-key-0005"
MORE_KEYS = KEYS + [{"name": "sumonly", "key": SUM_ONLY, "scopes": ["infer"], "models": ["sum"]},
                    {"name": "toyonly", "key": TOY_ONLY, "scopes": ["infer"], "models": ["toy"]}]


async def _denied(call, code=grpc.StatusCode.PERMISSION_DENIED) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    return info.value.details()


async def test_f1_mlserver_repository_service_needs_an_admin_key(start):
    served = await start(api_keys=MORE_KEYS, repository_api="admin")
    repo = ModelRepositoryServiceStub(served.channel)
    triton = GRPCInferenceServiceStub(served.channel)
    for key in (INFER, SUM_ONLY):  # an infer key, and one limited to the very model it unloads
        details = await _denied(repo.RepositoryModelUnload(mr.RepositoryModelUnloadRequest(model_name="sum"),
                                                           metadata=key_metadata(key)))
        assert "lacks the 'admin' scope" in details
        await _denied(repo.RepositoryModelLoad(mr.RepositoryModelLoadRequest(model_name="sum"), metadata=key_metadata(key)))
        await _denied(repo.RepositoryIndex(mr.RepositoryIndexRequest(), metadata=key_metadata(key)))
    await _denied(repo.RepositoryModelUnload(mr.RepositoryModelUnloadRequest(model_name="sum")), grpc.StatusCode.UNAUTHENTICATED)
    # sum was never unloaded: the key still infers with it, and the admin key may unload another model.
    reply = await triton.ModelInfer(infer_request("sum", ("x", "FP32", X)), metadata=key_metadata(SUM_ONLY))
    assert reply.model_name == "sum"
    await repo.RepositoryModelUnload(mr.RepositoryModelUnloadRequest(model_name="spare"), metadata=key_metadata(ADMIN))
    assert not (await triton.ModelReady(pb.ModelReadyRequest(name="spare"))).ready


async def test_f1_repository_off_without_keys_refuses_the_mlserver_service(start):
    served = await start(repository_api="off")
    repo = ModelRepositoryServiceStub(served.channel)
    details = await _denied(repo.RepositoryModelUnload(mr.RepositoryModelUnloadRequest(model_name="sum")))
    assert details == "The repository API is turned off on this server (repository_api: off)"
    await _denied(repo.RepositoryModelLoad(mr.RepositoryModelLoadRequest(model_name="sum")))
    r = await served.http.post("/v2/models/sum/infer", json=V2_BODY)
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [6.0]


async def test_f3_a_model_scoped_key_cannot_call_another_model_through_the_openai_routes(start):
    served = await start(api_keys=MORE_KEYS)
    body = {"model": "toy", "prompt": "hi", "max_tokens": 2}
    for path in ("/openai/v1/completions", "/v1/completions"):
        r = await served.http.post(path, json=body, headers=key_headers(SUM_ONLY))
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"]["message"] == "API key 'sumonly' may not call model 'toy'"
    chat = {"model": "toy", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "stream": True}
    r = await served.http.post("/openai/v1/chat/completions", json=chat, headers=key_headers(SUM_ONLY))
    assert r.status_code == 403 and "data:" not in r.text
    r = await served.http.get("/openai/v1/models/toy", headers=key_headers(SUM_ONLY))
    assert r.status_code == 403
    # The openai client with a key for toy is served.
    client = openai.AsyncOpenAI(base_url=str(served.http.base_url).rstrip("/") + "/openai/v1", api_key=TOY_ONLY, max_retries=0)
    try:
        done = await client.completions.create(model="toy", prompt="hi", max_tokens=2)
        assert done.choices[0].text
        with pytest.raises(openai.PermissionDeniedError):
            await client.embeddings.create(model="encoder", input="hi")
    finally:
        await client.close()


async def test_f5_infer_stream_and_generate_count_against_the_rate_limit(start):
    served = await start(api_keys=MORE_KEYS, rate_limit="2/minute")
    headers = key_headers(INFER)
    assert (await served.http.post("/v2/models/sum/infer_stream", json=V2_BODY, headers=headers)).status_code == 200
    assert (await served.http.post("/v2/models/sum/infer_stream", json=V2_BODY, headers=headers)).status_code == 200
    for path, body in (("/v2/models/sum/infer_stream", V2_BODY), ("/v2/models/sum/infer", V2_BODY),
                       ("/v2/models/toy/generate_stream", {"text_input": "hi"}),
                       ("/openai/v1/completions", {"model": "toy", "prompt": "hi", "max_tokens": 2})):
        r = await served.http.post(path, json=body, headers=headers)
        assert r.status_code == 429 and "retry-after" in r.headers, (path, r.status_code, r.text)
    # Another client (another key) has its own bucket; reads are not counted.
    assert (await served.http.post("/v2/models/sum/infer_stream", json=V2_BODY, headers=key_headers(ADMIN))).status_code == 200
    assert (await served.http.get("/v2/models/sum", headers=headers)).status_code == 200


async def test_f10_trailing_slash_is_no_keyless_listing_and_aggregates_show_the_callers_models(start):
    served = await start(api_keys=MORE_KEYS, enable_ui=True)
    http = served.http
    r = await http.get("/v1/models/")
    assert r.status_code == 404 and "sum" not in r.text
    assert (await http.get("/v1/models")).status_code == 401
    # Aggregate views answer a model-limited key with its own models only.
    assert (await http.get("/v1/models", headers=key_headers(SUM_ONLY))).json() == {"models": ["sum"]}
    stats = (await http.get("/v2/models/stats", headers=key_headers(SUM_ONLY))).json()["model_stats"]
    assert [s["name"] for s in stats] == ["sum"]
    triton = GRPCInferenceServiceStub(served.channel)
    reply = await triton.ModelStatistics(pb.ModelStatisticsRequest(), metadata=key_metadata(SUM_ONLY))
    assert [s.name for s in reply.model_stats] == ["sum"]
    await _denied(triton.ModelStatistics(pb.ModelStatisticsRequest(name="other"), metadata=key_metadata(SUM_ONLY)))
    cards = (await http.get("/openai/v1/models", headers=key_headers(SUM_ONLY))).json()["data"]
    assert cards == []  # toy and encoder are not its models
    doc = (await http.get("/openapi.json", headers=key_headers(SUM_ONLY))).json()
    assert not any("/toy/" in p or "/other/" in p for p in doc["paths"])
    # The console's lists are filtered the same way; another model's detail is refused.
    listed = (await http.get("/ui/api/models", headers=key_headers(SUM_ONLY))).json()["models"]
    assert [m["name"] for m in listed] == ["sum"]
    assert set((await http.get("/ui/api/stats", headers=key_headers(SUM_ONLY))).json()["models"]) <= {"sum"}
    assert (await http.get("/ui/api/models/other", headers=key_headers(SUM_ONLY))).status_code == 403
    assert (await http.get("/ui/api/stats", headers=key_headers(INFER))).status_code == 200
    # Unlimited keys see everything.
    every = (await http.get("/v1/models", headers=key_headers(INFER))).json()["models"]
    assert {"sum", "other", "toy", "encoder"} <= set(every)
    reply = await triton.ModelStatistics(pb.ModelStatisticsRequest(), metadata=key_metadata(ADMIN))
    assert {"sum", "other"} <= {s.name for s in reply.model_stats}


async def test_only_doors_declared_cacheable_answer_from_the_response_cache(start, tmp_path):
    import json

    from modelport import doors

    folder = tmp_path / "cached-models"
    (folder / "cached").mkdir(parents=True)
    (folder / "cached" / "model-settings.json").write_text(json.dumps(
        {"name": "cached", "implementation": "tests.fixture_models.SumModel", "response_cache": {"max_entries": 10}}))
    served = await start(model_repository=str(folder))
    bodies = {"v2.infer": V2_BODY, "v2.infer_stream": V2_BODY}
    for door in doors.REST:
        if door.name not in bodies:
            continue
        path = door.path.replace("{model_name}", "cached")
        answers = [await served.http.post(path, json=bodies[door.name]) for _ in range(2)]
        assert [a.status_code for a in answers] == [200, 200]
        assert (answers[1].headers.get("x-modelport-cache") == "hit") == door.cache, door.name
    triton = GRPCInferenceServiceStub(served.channel)
    call = triton.ModelInfer(infer_request("cached", ("x", "FP32", X)))
    await call
    assert ("x-modelport-cache", "hit") in tuple(await call.trailing_metadata())  # REST's infer filled the entry
    assert doors.GRPC_BY_METHOD["/inference.GRPCInferenceService/ModelInfer"].cache

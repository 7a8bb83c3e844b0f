"""Every door loads a registered model on demand: gRPC unary and stream, REST streams (SSE), the
OpenAI routes; with versions and a traffic policy, the response cache, and MLServer's (ModelMesh's)
repository RPCs."""

from __future__ import annotations

import asyncio
import json
import random

import grpc
import numpy as np
import openai

from modelport.types import InferInput, InferRequest
from modelport.wire.grpc import convert
from modelport.wire.grpc import grpc_predict_v2_pb2 as pb
from modelport.wire.grpc import model_repository_pb2 as mr
from modelport.wire.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from modelport.wire.grpc.model_repository_pb2_grpc import ModelRepositoryServiceStub

from ..openai.models import ToyLM
from .conftest import IRIS_ROW, index_of, metric, sized_model, sklearn_folder, v2_body


def iris_proto(name: str) -> pb.ModelInferRequest:
    x = np.array(IRIS_ROW, dtype=np.float64)
    return convert.request_to_proto(InferRequest(name, [InferInput("input-0", list(x.shape), "FP64", x)]))


async def test_grpc_eviction_under_concurrent_load_zero_failures(serve, tmp_path, iris_bytes):
    folder = sklearn_folder(tmp_path / "models", iris_bytes, 10)
    server, _ = await serve(model_repository=str(folder), max_loaded_models=3, enable_grpc=True)
    rng = random.Random(11)
    failures = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = GRPCInferenceServiceStub(channel)
        assert (await stub.ModelReady(pb.ModelReadyRequest(name="m4"))).ready  # registered: loadable
        assert (await stub.ServerReady(pb.ServerReadyRequest())).ready

        async def worker(n: int) -> None:
            for _ in range(n):
                name = f"m{rng.randrange(10)}"
                try:
                    reply = await stub.ModelInfer(iris_proto(name), timeout=30)
                    assert reply.model_name == name
                except grpc.aio.AioRpcError as exc:
                    failures.append((name, exc.code(), exc.details()))

        await asyncio.gather(*(worker(20) for _ in range(6)))
        # A stream opened to a cold model loads it too, and answers every request on the stream.
        cold = next(n for n, m in index_of(server).items() if m["state"] in ("REGISTERED", "EVICTED"))
        answers = [m async for m in stub.ModelStreamInfer(iter([iris_proto(cold), iris_proto(cold)]))]
        assert [a.error_message for a in answers] == ["", ""]
        index = (await stub.RepositoryIndex(pb.RepositoryIndexRequest())).models
    assert failures == []
    states = [m.state for m in index]
    assert states.count("READY") + states.count("LOADING") <= 3 and "EVICTED" in states
    assert {m.reason for m in index if m.state == "EVICTED"} == {"evicted: LRU, max_loaded_models 3"}


async def test_grpc_budget_full_and_failed_load_are_unavailable_with_reason(serve, tmp_path):
    folder = tmp_path / "grpc_fail"
    (sized_model(folder, "broken") / "broken").write_text("")
    server, _ = await serve(model_repository=str(folder), max_loaded_models=2, enable_grpc=True)
    x = np.ones((1, 4), np.float32)
    request = convert.request_to_proto(InferRequest("broken", [InferInput("x", [1, 4], "FP32", x)]))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = GRPCInferenceServiceStub(channel)
        try:
            await stub.ModelInfer(request, timeout=30)
            raise AssertionError("a broken model answered")
        except grpc.aio.AioRpcError as exc:
            assert exc.code() is grpc.StatusCode.UNAVAILABLE
            assert "weights are corrupt" in exc.details()
        assert (await stub.ServerReady(pb.ServerReadyRequest())).ready


async def test_rest_streams_and_openai_routes_load_on_demand(serve, tmp_path):
    class ColdToy(ToyLM):
        def __init__(self, name: str):
            super().__init__(name, length=5)
            self.ready = False

        def load(self):
            self.ready = True
            return True

    folder = tmp_path / "streams"
    sized_model(folder, "plain")
    server, client = await serve([ColdToy("toy-a"), ColdToy("toy-b")], model_repository=str(folder), max_loaded_models=1)
    assert {n: m["state"] for n, m in index_of(server).items()} == {"plain": "REGISTERED", "toy-a": "REGISTERED", "toy-b": "REGISTERED"}
    # SSE: a model that does not stream answers a stream of one.
    async with client.stream("POST", "/v2/models/plain/infer_stream", json=v2_body()) as r:
        assert r.status_code == 200
        events = [line async for line in r.aiter_lines() if line.startswith("data:")]
    assert len(events) == 1 and json.loads(events[0][5:])["model_name"] == "plain"
    base = f"http://127.0.0.1:{server.http_port}/openai/v1"
    async with openai.AsyncOpenAI(base_url=base, api_key="x", max_retries=0) as oa:
        for name in ("toy-a", "toy-b", "toy-a"):  # each evicts the other
            done = await oa.completions.create(model=name, prompt="p", max_tokens=3, temperature=0)
            assert done.choices[0].text.split() == ["alpha", "beta", "gamma"]
        chunks = [c async for c in await oa.completions.create(model="toy-b", prompt="p", max_tokens=2, temperature=0, stream=True)]
        assert "".join(c.choices[0].text for c in chunks if c.choices).split() == ["alpha", "beta"]
    index = index_of(server)
    assert index["toy-b"]["state"] == "READY" and index["toy-a"]["state"] == "EVICTED"
    assert index["toy-a"]["loads"] == 2


async def test_versions_with_a_traffic_policy_load_on_demand(serve, tmp_path):
    folder = tmp_path / "versions"
    for version in ("1", "2"):
        target = folder / "v" / version
        sized_model(folder / "v", version, size=10 + int(version))
        settings = json.loads((target / "model-settings.json").read_text())
        settings["name"] = "v"
        settings["parameters"]["version"] = version
        settings["traffic"] = {"1": 50, "2": 50}
        (target / "model-settings.json").write_text(json.dumps(settings))
    server, client = await serve(model_repository=str(folder), max_loaded_models=1)
    seen = set()
    for _ in range(30):
        r = await client.post("/v2/models/v/infer", json=v2_body())
        assert r.status_code == 200, r.text
        seen.add(r.headers["x-modelport-model-version"])
    assert seen == {"1", "2"}
    r = await client.post("/v2/models/v/versions/2/infer", json=v2_body())
    assert r.status_code == 200 and r.json()["model_version"] == "2"
    states = sorted(m["state"] for m in server.dataplane.repository_index())
    assert states == ["EVICTED", "READY"]


async def test_response_cache_with_eviction(serve, tmp_path):
    folder = tmp_path / "cached"
    model_dir = sized_model(folder, "c")
    settings = json.loads((model_dir / "model-settings.json").read_text())
    settings["response_cache"] = True
    (model_dir / "model-settings.json").write_text(json.dumps(settings))
    sized_model(folder, "other")
    server, client = await serve(model_repository=str(folder), max_loaded_models=1)
    first = await client.post("/v2/models/c/infer", json=v2_body())
    second = await client.post("/v2/models/c/infer", json=v2_body())
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.headers["x-modelport-cache"], second.headers["x-modelport-cache"]) == ("miss", "hit")
    assert "x-modelport-load-seconds" in first.headers and "x-modelport-load-seconds" not in second.headers
    assert (await client.post("/v2/models/other/infer", json=v2_body())).status_code == 200
    assert index_of(server)["c"]["state"] == "EVICTED"
    again = await client.post("/v2/models/c/infer", json=v2_body())  # evicted with its cache: loads again
    assert again.status_code == 200 and again.json()["outputs"] == first.json()["outputs"]
    assert index_of(server)["c"]["state"] == "READY"


async def test_mlserver_repository_rpcs_and_the_lru_agree(serve, tmp_path):
    """ModelMesh's adapter drives MLServer's repository service: its load loads now and counts against
    the limit; its unload is final (no reload on demand) until it loads again."""
    folder = tmp_path / "mm"
    for i in range(3):
        sized_model(folder, f"mm{i}")
    server, client = await serve(model_repository=str(folder), max_loaded_models=2, enable_grpc=True)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        repo = ModelRepositoryServiceStub(channel)
        for i in range(3):
            await repo.RepositoryModelLoad(mr.RepositoryModelLoadRequest(model_name=f"mm{i}"))
        states = {m.name: m.state for m in (await repo.RepositoryIndex(mr.RepositoryIndexRequest())).models}
        assert states == {"mm0": "EVICTED", "mm1": "READY", "mm2": "READY"}
        await repo.RepositoryModelUnload(mr.RepositoryModelUnloadRequest(model_name="mm1"))
        r = await client.post("/v2/models/mm1/infer", json=v2_body())
        assert r.status_code == 503 and "unloaded" in r.json()["error"]
        assert (await client.post("/v2/models/mm0/infer", json=v2_body())).status_code == 200
        states = {m.name: m.state for m in (await repo.RepositoryIndex(mr.RepositoryIndexRequest())).models}
        assert states == {"mm0": "READY", "mm1": "UNAVAILABLE", "mm2": "READY"}
    text = (await client.get("/metrics")).text
    assert metric(text, "modelport_models_loaded") == 2

"""Batching, backpressure (429) and deadlines (504) through the REST door."""

from __future__ import annotations

import asyncio

import numpy as np

from ..fixture_models import AsyncSlowModel, SumModel
from ..gated_models import AsyncGatedModel
from ..unit.test_batching import RowModel


def body(rows, name="x", **params):
    arr = np.asarray(rows, dtype=np.float32)
    doc = {"inputs": [{"name": name, "shape": list(arr.shape), "datatype": "FP32", "data": arr.ravel().tolist()}]}
    if params:
        doc["parameters"] = params
    return doc


async def test_batching_over_rest_v1_and_v2(serve):
    model = RowModel("rows")
    model.max_batch_size, model.max_batch_time = 32, 0.05
    server, client = await serve([model])
    rows = [[[i, i + 1]] for i in range(12)]
    v2 = [client.post("/v2/models/rows/infer", json={**body(r), "id": f"r{i}", "outputs": [{"name": "total"}]})
          for i, r in enumerate(rows)]
    v1 = [client.post("/v1/models/rows:predict", json={"instances": r}) for r in rows]
    results = await asyncio.gather(*v2, *v1)
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    for i, r in enumerate(results[:12]):
        doc = r.json()
        assert doc["id"] == f"r{i}"
        assert [o["name"] for o in doc["outputs"]] == ["total"]
        assert doc["outputs"][0]["data"] == [2.0 * i + 1]
    for i, r in enumerate(results[12:]):
        assert r.json() == {"predictions": [(2 * i + 1) * 10]}
    assert len(model.batches) < 24
    metrics = (await client.get("/metrics")).text
    assert 'modelport_batch_size_count{model="rows"}' in metrics


async def test_overload_answers_429_at_once(serve):
    # The two first requests stay inside the model until released; everything below happens meanwhile.
    slow = AsyncGatedModel("aslow")
    slow.max_queue_size = 2
    server, client = await serve([slow, SumModel("sum")])
    first = [asyncio.ensure_future(client.post("/v2/models/aslow/infer", json=body([[1]]))) for _ in range(2)]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while server.dataplane.in_flight().get("aslow", 0) < 2:  # both are in the model (no fixed sleep)
        assert loop.time() < deadline, "the first two requests never reached the model"
        await asyncio.sleep(0.01)
    r = await client.post("/v2/models/aslow/infer", json=body([[1]]))
    assert r.status_code == 429 and "max_queue_size" in r.json()["error"]
    r = await client.post("/v1/models/aslow:predict", json={"instances": [[1]]})
    assert r.status_code == 429
    # Refused at once: both answers came while the first two were still held inside the model.
    assert slow.active == 2 and not any(f.done() for f in first)
    slow.release()
    assert all(r.status_code == 200 for r in await asyncio.gather(*first))
    assert (await client.post("/v2/models/aslow/infer", json=body([[1]]))).status_code == 200


async def test_deadlines(serve):
    server, client = await serve([AsyncSlowModel("aslow", delay=0.5), SumModel("sum")], request_timeout=5)
    # Header, in seconds.
    r = await client.post("/v2/models/aslow/infer", json=body([[1]]), headers={"x-request-timeout": "0.1"})
    assert r.status_code == 504 and "deadline" in r.json()["error"]
    r = await client.post("/v1/models/aslow:predict", json={"instances": [[1]]}, headers={"x-request-timeout": "0.1"})
    assert r.status_code == 504
    # V2 "timeout" parameter, in microseconds as Triton's clients send it.
    r = await client.post("/v2/models/aslow/infer", json=body([[1]], timeout=100_000))
    assert r.status_code == 504
    # A generous deadline lets it finish; nonsense is a 400.
    r = await client.post("/v2/models/aslow/infer", json=body([[1]]), headers={"x-request-timeout": "3"})
    assert r.status_code == 200
    r = await client.post("/v2/models/aslow/infer", json=body([[1]]), headers={"x-request-timeout": "soon"})
    assert r.status_code == 400 and "x-request-timeout" in r.json()["error"]


async def test_server_default_deadline(serve):
    server, client = await serve([AsyncSlowModel("aslow", delay=0.5)], request_timeout=0.1)
    r = await client.post("/v2/models/aslow/infer", json=body([[1]]))
    assert r.status_code == 504
    # A request cannot raise the server's deadline, only lower it.
    r = await client.post("/v2/models/aslow/infer", json=body([[1]]), headers={"x-request-timeout": "10"})
    assert r.status_code == 504

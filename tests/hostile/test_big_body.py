"""Large V2 JSON bodies decode in a helper process (issue 9, defect 8): same answers, loop free."""

from __future__ import annotations

import asyncio

import numpy as np
import orjson

from tests.fixture_models import SumModel


async def test_large_bodies_decode_off_the_loop_with_the_same_answers(serve):
    server, client = await serve([SumModel("sum")], decode_offload_size=4096)
    rows = np.arange(4000, dtype=np.float32).reshape(1000, 4)
    body = orjson.dumps({"id": "big", "inputs": [{"name": "x", "shape": [1000, 4], "datatype": "FP32", "data": rows.ravel().tolist()}]})
    assert len(body) > 4096
    r = await client.post("/v2/models/sum/infer", content=body)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == "big" and r.json()["outputs"][0]["data"] == rows.sum(axis=1).tolist()
    assert server.rest_app.offload._executor is not None  # it went through the helper process
    # A bad large body gets the same 400 as a small one, from the helper.
    bad = body.replace(b'"shape":[1000,4]', b'"shape":[999,4]')
    r = await client.post("/v2/models/sum/infer", content=bad)
    assert r.status_code == 400 and "x" in r.json()["error"], r.text
    # Health answers while large bodies decode (in the helper process, checked above).
    big = [asyncio.ensure_future(client.post("/v2/models/sum/infer", content=body)) for _ in range(4)]
    assert (await client.get("/v2/health/live")).status_code == 200
    assert all(r.status_code == 200 for r in await asyncio.gather(*big))

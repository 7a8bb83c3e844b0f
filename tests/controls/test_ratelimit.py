"""Rate limits per client and per model over REST and gRPC: 429 with Retry-After / RESOURCE_EXHAUSTED,
the counter, the bounded client table, and composing with max_queue_size."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from ..fixture_models import SlowModel, SumModel
from .conftest import V2_BODY, bearer, grpc_fails, grpc_infer


async def _eventually_ok(send, deadline: float = 30.0):
    """Retry until the limiter lets a request through again (a token refills); fail after ``deadline``."""
    end = time.monotonic() + deadline
    while True:
        r = await send()
        if r.status_code == 200 or time.monotonic() > end:
            return r
        await asyncio.sleep(0.05)


async def test_per_client_limit_over_rest_and_grpc(both):
    server, http, stub = await both([SumModel("sum")], rate_limit="2/minute")
    for _ in range(2):
        assert (await http.post("/v2/models/sum/infer", json=V2_BODY)).status_code == 200
    r = await http.post("/v2/models/sum/infer", json=V2_BODY)
    assert r.status_code == 429
    # The wait is what is left until a token refills (30 s at 2/minute, a little less as time passes).
    assert r.headers["retry-after"] in ("28", "29", "30")
    assert r.json() == {"error": f"Rate limit exceeded for this client (2/minute); retry in {r.headers['retry-after']} s"}
    # gRPC comes from the same address: the same client, the same bucket.
    err = await grpc_fails(stub.ModelInfer(grpc_infer()), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert err.details().startswith("Rate limit exceeded for this client (2/minute); retry in ")
    assert dict(err.trailing_metadata())["retry-after"] in ("28", "29", "30")
    # Health is never limited; the counter says who was refused.
    assert (await http.get("/v2/health/ready")).status_code == 200
    text = (await http.get("/metrics")).text
    assert 'modelport_rate_limited_total{client_class="address",model="sum"} 2.0' in text


async def test_a_token_refills_and_the_server_serves_again(both):
    server, http, stub = await both([SumModel("sum")], rate_limit="1/second;burst=1")  # slow enough that no stall refills it early
    assert (await http.post("/v2/models/sum/infer", json=V2_BODY)).status_code == 200
    r = await http.post("/v2/models/sum/infer", json=V2_BODY)
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert (await _eventually_ok(lambda: http.post("/v2/models/sum/infer", json=V2_BODY))).status_code == 200
    end = time.monotonic() + 30
    while True:
        try:
            await stub.ModelInfer(grpc_infer())
            break
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() < end
            await asyncio.sleep(0.05)


async def test_clients_by_key_then_header_then_address(both):
    keys = [{"name": "a", "key": "ka"}, {"name": "b", "key": "kb"}]
    server, http, stub = await both([SumModel("sum")], api_keys=keys, rate_limit="1/minute")
    assert (await http.post("/v2/models/sum/infer", json=V2_BODY, headers=bearer("ka"))).status_code == 200
    assert (await http.post("/v2/models/sum/infer", json=V2_BODY, headers=bearer("ka"))).status_code == 429
    assert (await http.post("/v2/models/sum/infer", json=V2_BODY, headers=bearer("kb"))).status_code == 200
    metadata = (("authorization", "Bearer kb"),)
    await grpc_fails(stub.ModelInfer(grpc_infer(), metadata=metadata), grpc.StatusCode.RESOURCE_EXHAUSTED)

    # The header names the client on connections from a trusted proxy (this test's client is one).
    server, http, stub = await both([SumModel("sum")], rate_limit="1/minute", rate_limit_header="x-client",
                                    trusted_proxies="10.0.0.0/8, 127.0.0.1")
    for i in range(3):
        assert (await http.post("/v2/models/sum/infer", json=V2_BODY, headers={"x-client": f"c{i}"})).status_code == 200
    assert (await http.post("/v2/models/sum/infer", json=V2_BODY, headers={"x-client": "c1"})).status_code == 429
    text = (await http.get("/metrics")).text
    assert 'modelport_rate_limited_total{client_class="header",model="sum"} 1.0' in text


async def test_a_forged_client_header_picks_no_fresh_bucket(both):
    """Probe F9: a spoofed rate_limit_header per request got 100/100 through. Without trusted_proxies
    (or from an address not listed) the header is ignored and the address is the client."""
    for extra in ({}, {"trusted_proxies": ["10.0.0.0/8", "192.168.1.1"]}):
        server, http, stub = await both([SumModel("sum")], rate_limit="3/minute", rate_limit_header="x-client-id", **extra)
        statuses = [(await http.post("/v2/models/sum/infer", json=V2_BODY, headers={"x-client-id": f"spoof-{i}"})).status_code
                    for i in range(10)]
        assert statuses == [200] * 3 + [429] * 7, statuses
        err = await grpc_fails(stub.ModelInfer(grpc_infer(), metadata=(("x-client-id", "spoof-grpc"),)), grpc.StatusCode.RESOURCE_EXHAUSTED)
        assert "this client" in err.details()
        assert 'client_class="address"' in (await http.get("/metrics")).text
        assert (await http.get("/v2/health/ready")).status_code == 200  # serving on
    # With a key, the key names the client whatever the header says: a normal request succeeds.
    server, http, stub = await both([SumModel("sum")], api_keys=[{"name": "a", "key": "ka"}], rate_limit="3/minute",
                                    rate_limit_header="x-client-id")
    assert (await http.post("/v2/models/sum/infer", json=V2_BODY, headers={**bearer("ka"), "x-client-id": "x"})).status_code == 200


def test_bad_trusted_proxies_are_a_settings_error():
    from modelport.settings import SettingsError

    from ..helpers import make_server

    with pytest.raises(SettingsError, match="trusted_proxies: 'not-an-ip' is not an IP address or CIDR"):
        make_server(rate_limit="1/minute", trusted_proxies=["127.0.0.1", "not-an-ip"])


async def test_a_full_client_table_never_resets_a_throttled_client(both):
    """Probe F9: 60 other client ids pushed the throttled victim out of the table (fresh burst). Now a
    new client takes the place of a refilled bucket only; while none has refilled, the new one waits."""
    server, http, stub = await both([SumModel("sum")], rate_limit="1/minute", rate_limit_header="x-client",
                                    trusted_proxies="127.0.0.1", rate_limit_clients=3)

    async def send(client):
        return (await http.post("/v2/models/sum/infer", json=V2_BODY, headers={"x-client": client}))

    assert (await send("victim")).status_code == 200
    assert (await send("victim")).status_code == 429
    for i in range(2):
        assert (await send(f"c{i}")).status_code == 200
    for i in range(2, 60):  # the attack: many new clients while the table is full of limited ones
        r = await send(f"c{i}")
        assert r.status_code == 429 and "Too many clients are rate limited at once (rate_limit_clients 3)" in r.json()["error"]
    assert (await send("victim")).status_code == 429  # not reset
    assert len(server.controls.clients) == 3
    text = (await http.get("/metrics")).text
    assert 'modelport_rate_limited_total{client_class="table_full",model="sum"} 58.0' in text
    # Known clients are served as their buckets allow.
    assert (await send("c0")).status_code == 429


async def test_a_refilled_bucket_makes_room_for_a_new_client(both):
    server, http, stub = await both([SumModel("sum")], rate_limit="2/second;burst=1", rate_limit_header="x-client",
                                    trusted_proxies="127.0.0.1", rate_limit_clients=2)

    async def send(client):
        return (await http.post("/v2/models/sum/infer", json=V2_BODY, headers={"x-client": client}))

    assert (await send("a")).status_code == 200 and (await send("b")).status_code == 200
    # Once a's or b's bucket has refilled (half a second), a new client takes its place.
    assert (await _eventually_ok(lambda: send("new"))).status_code == 200
    assert len(server.controls.clients) == 2


async def test_per_model_limit(both):
    limited = SumModel("limited")
    limited.rate_limit = "1/minute"
    server, http, stub = await both([limited, SumModel("free")], rate_limit_model="100/minute")
    assert (await http.post("/v2/models/limited/infer", json=V2_BODY)).status_code == 200
    r = await http.post("/v2/models/limited/infer", json=V2_BODY)
    assert r.status_code == 429 and r.headers["retry-after"] in ("58", "59", "60")
    assert r.json() == {"error": f"Rate limit exceeded for model limited (1/minute); retry in {r.headers['retry-after']} s"}
    err = await grpc_fails(stub.ModelInfer(grpc_infer("limited")), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert err.details().startswith("Rate limit exceeded for model limited (1/minute); retry in ")
    r = await http.post("/v1/models/limited:predict", json={"instances": [[1, 2]]})
    assert r.status_code == 429
    for _ in range(5):  # the other model has the server's default, far from its limit
        assert (await http.post("/v2/models/free/infer", json=V2_BODY)).status_code == 200
    assert 'modelport_rate_limited_total{client_class="model",model="limited"} 3.0' in (await http.get("/metrics")).text


async def test_composes_with_queue_backpressure(both):
    server, http, stub = await both([SlowModel("slow", delay=1.0)], rate_limit="1000/minute", max_queue_size=1)
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1.0]}]}
    first = asyncio.ensure_future(http.post("/v2/models/slow/infer", json=body))
    end = time.monotonic() + 30
    while server.dataplane.in_flight().get("slow", 0) < 1 and time.monotonic() < end:
        await asyncio.sleep(0.01)
    r = await http.post("/v2/models/slow/infer", json=body)
    assert r.status_code == 429 and "max_queue_size 1" in r.json()["error"]  # backpressure, not the rate limit
    assert "retry-after" not in r.headers
    assert (await first).status_code == 200
    assert (await http.post("/v2/models/slow/infer", json=body)).status_code == 200


@pytest.mark.parametrize("text", ["100", "x/minute", "0/minute", "5/fortnight", "5/minute;burst=0"])
def test_bad_limits_are_setting_errors(text):
    from modelport.settings import SettingsError

    from ..helpers import make_server

    with pytest.raises(SettingsError, match="Setting rate_limit"):
        make_server(rate_limit=text)

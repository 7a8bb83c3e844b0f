"""Shadow traffic, per-version metrics and automatic rollback of a failing canary."""

from __future__ import annotations

import asyncio
import re
import time

from .models import X, Versioned


def metric(text: str, name: str, **labels) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if m and all(f'{k}="{v}"' in m.group(1) for k, v in labels.items()):
            total += float(m.group(2))
    return total if want or total else 0.0


async def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_shadow_counts_disagreements_and_never_touches_the_primary(serve):
    same = Versioned("m", "2", scale=1.0)
    server, client = await serve([Versioned("m", "1", scale=1.0), same, Versioned("m", "3", scale=1.5)])
    r = await client.post("/v2/repository/models/m/traffic",
                          json={"traffic": {"1": 100}, "shadow": {"version": "3", "percent": 50}})
    assert r.status_code == 200, r.text
    for _ in range(40):
        r = await client.post("/v2/models/m/infer", json=X)
        assert r.status_code == 200 and r.json()["model_version"] == "1"
        assert r.json()["outputs"][0]["data"] == [3.0]  # the primary's answer, always

    async def mirrored(n, version):
        text = (await client.get("/metrics")).text
        return metric(text, "modelport_shadow_requests_total", model="m", version=version) >= n

    await wait_for(lambda: mirrored(20, "3"))
    text = (await client.get("/metrics")).text
    assert metric(text, "modelport_shadow_requests_total", model="m", version="3") == 20  # exactly 50 %
    assert metric(text, "modelport_shadow_disagreements_total", model="m", version="3") == 20  # 4.5 != 3
    assert metric(text, "modelport_shadow_duration_seconds_count", model="m", version="3") == 20
    # A candidate that agrees (within the tolerance) is counted, not flagged.
    same.scale = 1.0 + 1e-4
    await client.post("/v2/repository/models/m/traffic",
                      json={"traffic": {"1": 100}, "shadow": {"version": "2", "tolerance": 0.01}})
    for _ in range(10):
        assert (await client.post("/v2/models/m/infer", json=X)).status_code == 200
    await wait_for(lambda: mirrored(10, "2"))
    text = (await client.get("/metrics")).text
    assert metric(text, "modelport_shadow_disagreements_total", model="m", version="2") == 0


async def test_a_slow_or_failing_shadow_neither_slows_nor_fails_the_primary(serve):
    shadow = Versioned("m", "2", fail=True)
    shadow.gate = asyncio.Event()  # the shadow hangs until the primaries have all answered
    server, client = await serve([Versioned("m", "1"), shadow], max_shadow_requests=4)
    await client.post("/v2/repository/models/m/traffic", json={"traffic": {"1": 100}, "shadow": {"version": "2"}})
    results = await asyncio.gather(*(client.post("/v2/models/m/infer", json=X) for _ in range(10)))
    assert all(r.status_code == 200 for r in results)  # answered while every shadow still hangs
    assert shadow.calls == 4
    shadow.gate.set()
    text = (await client.get("/metrics")).text
    assert metric(text, "modelport_shadow_dropped_total", model="m", version="2") == 6  # bound of 4 running
    await server.router.drain_shadows()
    text = (await client.get("/metrics")).text
    assert metric(text, "modelport_shadow_disagreements_total", model="m", version="2") == 4  # failures count


async def test_per_version_metrics_and_automatic_rollback(serve):
    server, client = await serve([Versioned("m", "1"), Versioned("m", "2", fail=True)])
    await client.post("/v2/repository/models/m/promote", json={"version": "1"})
    r = await client.post("/v2/repository/models/m/traffic", json={
        "traffic": {"1": 50, "2": 50}, "rollback": {"version": "2", "error_rate": 0.3, "window": 10, "min_requests": 5}})
    assert r.status_code == 200, r.text
    statuses = [(await client.post("/v2/models/m/infer", json=X)).status_code for _ in range(30)]
    # 5 failures from the canary, then the policy rolls back to "all to version 1".
    assert statuses.count(500) == 5 and statuses[-10:] == [200] * 10
    assert (await client.post("/v2/repository/models/m/traffic")).json()["traffic"] == {"1": 100}
    text = (await client.get("/metrics")).text
    assert metric(text, "modelport_version_requests_total", model="m", version="2", outcome="error") == 5
    assert metric(text, "modelport_version_requests_total", model="m", version="1", outcome="ok") == 25
    assert metric(text, "modelport_auto_rollbacks_total", model="m", version="2") == 1
    assert metric(text, "modelport_version_request_duration_seconds_count", model="m", version="1") == 25

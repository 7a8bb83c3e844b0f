"""Traffic policies on a model name: exact weighted split, stickiness, version in the answer,
explicit versions bypassing the policy, admin calls over REST, and the CLI."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

from modelport.types import InferRequest
from modelport.wire import v2_json

from .models import X, Versioned, versions, with_settings

ROOT = Path(__file__).resolve().parents[2]


async def test_split_is_exact_over_10000_requests(serve):
    server, client = await serve(versions(scales={"2": 2.0, "3": 3.0}))
    r = await client.post("/v2/repository/models/m/traffic", json={"traffic": {"2": 90, "3": 10}})
    assert r.status_code == 200, r.text
    assert r.json()["traffic"] == {"2": 90, "3": 10}
    # 10,000 through the data plane in process (fast), then real requests over the socket.
    counts = collections.Counter()
    body = v2_json.dumps(X)
    for _ in range(10_000):
        request = v2_json.decode_request(body, "m")
        response, _ = await server.dataplane.infer(request, {})
        counts[response.model_version] += 1
    share = counts["2"] / 10_000 * 100
    assert abs(share - 90) <= 1.5, counts
    assert counts == {"2": 9000, "3": 1000}  # smooth WRR is exact over every 100
    seen = collections.Counter()
    for _ in range(100):
        r = await client.post("/v2/models/m/infer", json=X)
        assert r.status_code == 200
        assert r.headers["x-modelport-model-version"] == r.json()["model_version"]
        seen[r.json()["model_version"]] += 1
    assert seen == {"2": 90, "3": 10}


async def test_sticky_header_keeps_a_user_on_one_version(serve):
    server, client = await serve(versions(scales={"1": 1.0, "2": 2.0}))
    r = await client.post("/v2/repository/models/m/traffic", json={"traffic": {"1": 50, "2": 50}, "sticky": "x-user-id"})
    assert r.status_code == 200, r.text
    per_user = collections.defaultdict(set)
    for round_ in range(4):
        users = [f"user-{i}" for i in range(40)]
        answers = await asyncio.gather(*(client.post("/v2/models/m/infer", json=X, headers={"x-user-id": u}) for u in users))
        for user, r in zip(users, answers):
            per_user[user].add(r.json()["model_version"])
    assert all(len(v) == 1 for v in per_user.values())
    spread = collections.Counter(next(iter(v)) for v in per_user.values())
    assert set(spread) == {"1", "2"}  # 40 users land on both versions


async def test_explicit_version_bypasses_policy_and_v1_gets_header(serve):
    server, client = await serve(versions())
    await client.post("/v2/repository/models/m/traffic", json={"1": 100})
    r = await client.post("/v2/models/m/versions/2/infer", json=X)
    assert r.json()["model_version"] == "2" and "x-modelport-model-version" not in r.headers
    r = await client.post("/v1/models/m:predict", json={"instances": [[1, 2]]})
    assert r.status_code == 200 and r.json() == {"predictions": [1.0]}
    assert r.headers["x-modelport-model-version"] == "1"


async def test_policy_from_model_settings(serve):
    v1, v2 = versions()
    with_settings(v2, traffic={"1": 1, "2": 3})
    server, client = await serve([v1, v2])
    got = collections.Counter()
    for _ in range(8):
        got[(await client.post("/v2/models/m/infer", json=X)).json()["model_version"]] += 1
    assert got == {"1": 2, "2": 6}
    index = (await client.post("/v2/repository/index", json={})).json()
    assert all(item["traffic"]["traffic"] == {"1": 1, "2": 3} for item in index)


async def test_bad_policies_are_4xx_and_server_keeps_serving(serve):
    server, client = await serve(versions())
    for body, status in [
        ({"traffic": {"1": -1}}, 400), ({"traffic": {}}, 400), ({"traffic": {"9": 100}}, 404),
        ({"traffic": {"1": 50}, "color": 1}, 400), ([1, 2], 400), ({"traffic": {"1": 0}}, 400),
        ({"traffic": {"1": 100}, "shadow": {"version": "2", "percent": 200}}, 400),
    ]:
        r = await client.post("/v2/repository/models/m/traffic", json=body)
        assert r.status_code == status, (body, r.text)
        assert "error" in r.json()
    assert (await client.post("/v2/repository/models/nope/traffic", json={"1": 1})).status_code == 404
    assert (await client.post("/v2/repository/models/m/rollback")).status_code == 400  # nothing to roll back
    assert (await client.post("/v2/repository/models/m/promote", json={})).status_code == 400
    assert (await client.post("/v2/models/m/infer", json=X)).status_code == 200


async def test_policy_never_routes_to_a_loading_version(serve):
    v1 = Versioned("m", "1")
    server, client = await serve([v1])
    slow = Versioned("m", "2", scale=2.0)
    slow.load_gate = asyncio.Event()
    loading = asyncio.ensure_future(server.repository.load_model(slow))
    await asyncio.sleep(0)  # v2 is registered, LOADING until the gate opens
    r = await client.post("/v2/repository/models/m/promote", json={"version": "2"})
    assert r.status_code == 503, r.text  # not ready: refused, traffic unchanged
    r = await client.post("/v2/models/m/infer", json=X)
    assert r.status_code == 200 and r.json()["model_version"] == "1"  # the newest READY version
    slow.load_gate.set()
    await loading
    r = await client.post("/v2/repository/models/m/promote", json={"version": "2"})
    assert r.status_code == 200, r.text


async def _load(client, stop, errors, versions_seen, headers=None):
    while not stop.is_set() and len(errors) < 100:
        try:
            r = await client.post("/v2/models/m/infer", json=X, headers=headers)
            if r.status_code != 200:
                errors.append(r.text)
            else:
                versions_seen[r.json()["model_version"]] += 1
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))
            await asyncio.sleep(0.01)


async def test_promote_and_rollback_under_load_fail_nothing(serve):
    server, client = await serve(versions(delay=0.002))
    seen = collections.Counter()
    async with load_running(client, seen) as errors:
        for _ in range(10):
            r = await client.post("/v2/repository/models/m/promote", json={"version": "2"})
            assert r.status_code == 200 and r.json()["traffic"] == {"2": 100}
            await _answered(seen, 5)
            r = await client.post("/v2/repository/models/m/promote", json={"version": "1"})
            assert r.status_code == 200
            await _answered(seen, 5)
            r = await client.post("/v2/repository/models/m/rollback")
            assert r.status_code == 200 and r.json()["traffic"] == {"2": 100}  # back to the previous policy
            await _answered(seen, 5)
    assert errors == []
    assert seen["1"] > 0 and seen["2"] > 0


@contextlib.asynccontextmanager
async def load_running(client, seen, n=8):
    """Requests in a loop from n tasks; yields the error list; the tasks end even if the test fails."""
    stop, errors = asyncio.Event(), []
    workers = [asyncio.ensure_future(_load(client, stop, errors, seen)) for _ in range(n)]
    try:
        yield errors
    finally:
        stop.set()
        await asyncio.gather(*workers)


async def _answered(seen, more, timeout=30.0):
    target, deadline = sum(seen.values()) + more, time.monotonic() + timeout
    while sum(seen.values()) < target:
        assert time.monotonic() < deadline, "the load stopped (errors?)"
        await asyncio.sleep(0.005)


async def test_zero_errors_over_20_load_flip_unload_cycles(serve):
    """Load version k+1, flip all traffic to it, unload version k: 20 times under load."""
    server, client = await serve([Versioned("m", "1", delay=0.002)])
    seen = collections.Counter()
    async with load_running(client, seen) as errors:
        for k in range(1, 21):
            entry = await server.repository.load_model(Versioned("m", str(k + 1), delay=0.002, load_delay=0.01))
            assert entry.state.value == "READY"
            r = await client.post("/v2/repository/models/m/promote", json={"version": str(k + 1)})
            assert r.status_code == 200, r.text
            await _answered(seen, 20)  # both versions busy, then the old one goes
            await server.dataplane.unload("m", str(k))
            await _answered(seen, 20)
    print(f"\nswap cycles: 20, requests: {sum(seen.values())}, errors: {len(errors)}")
    assert errors == []
    assert seen["21"] > 0


def test_cli_traffic_promote_rollback():
    from tests.helpers import server_in_thread

    with server_in_thread(versions()) as server:
        url = f"http://127.0.0.1:{server.http_port}"

        def cli(*args):
            out = subprocess.run([sys.executable, "-m", "modelport.cli", *args, "--url", url], capture_output=True,
                                 text=True, timeout=60, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
            return out.returncode, out.stdout, out.stderr

        rc, out, err = cli("traffic", "m", "1=90", "2=10", "--sticky", "x-user-id")
        assert rc == 0, err
        assert json.loads(out)["traffic"] == {"1": 90, "2": 10}
        rc, out, err = cli("promote", "m", "2")
        assert rc == 0 and json.loads(out)["traffic"] == {"2": 100}, err
        rc, out, err = cli("rollback", "m")
        assert rc == 0 and json.loads(out)["traffic"] == {"1": 90, "2": 10}, err
        rc, out, err = cli("traffic", "m")
        assert rc == 0 and json.loads(out)["sticky"] == "x-user-id"
        rc, out, err = cli("promote", "m", "7")
        assert rc == 1 and "7" in err


async def test_grpc_is_routed_and_told_the_version(serve):
    from modelport.client import AsyncGRPCClient

    server, client = await serve(versions(), enable_grpc=True)
    await client.post("/v2/repository/models/m/traffic", json={"traffic": {"1": 1, "2": 1}})
    grpc_client = AsyncGRPCClient(f"127.0.0.1:{server.grpc_port}")
    try:
        seen = []
        for _ in range(4):
            headers = {}
            request = v2_json.decode_request(v2_json.dumps(X), "m")
            response = await grpc_client.infer(request, response_headers=headers)
            assert headers["x-modelport-model-version"] == response.model_version
            seen.append(response.model_version)
        assert sorted(seen) == ["1", "1", "2", "2"]
        request = v2_json.decode_request(v2_json.dumps(X), "m", "1")
        assert (await grpc_client.infer(request)).model_version == "1"
    finally:
        await grpc_client.close()


async def test_a_cached_model_still_follows_its_traffic_policy(serve):
    v1, v2 = versions()
    for m in (v1, v2):
        with_settings(m, response_cache=True)
    server, client = await serve([v1, v2])
    await client.post("/v2/repository/models/m/traffic", json={"traffic": {"1": 1, "2": 1}})
    seen = [(await client.post("/v2/models/m/infer", json=X)).json()["model_version"] for _ in range(4)]
    assert sorted(seen) == ["1", "1", "2", "2"]

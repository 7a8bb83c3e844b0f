"""On-demand loading and LRU eviction on real sockets (REST): many registered models, a limit that
fits a few, concurrent traffic with zero failed requests."""

from __future__ import annotations

import asyncio
import random

from .conftest import IRIS_ROW, counter, index_of, metric, sized_model, sklearn_folder, v2_body, wait_for


async def test_registered_not_loaded_then_first_request_loads(serve, tmp_path, iris_bytes):
    folder = sklearn_folder(tmp_path / "models", iris_bytes, 5)
    server, client = await serve(model_repository=str(folder), max_loaded_models=2)
    states = {n: m["state"] for n, m in index_of(server).items()}
    assert states == {f"m{i}": "REGISTERED" for i in range(5)}
    assert (await client.get("/v2/health/ready")).status_code == 200  # loadable on demand: ready
    assert (await client.get("/v2/models/m3/ready")).status_code == 200
    r = await client.post("/v2/models/m3/infer", json=v2_body())
    assert r.status_code == 200, r.text
    assert float(r.headers["x-modelport-load-seconds"]) > 0  # this answer waited for the load
    again = await client.post("/v2/models/m3/infer", json=v2_body())
    assert again.status_code == 200 and "x-modelport-load-seconds" not in again.headers
    item = index_of(server)["m3"]
    assert item["state"] == "READY" and item["loads"] == 1
    assert item["memory"]["bytes"] > 0 and item["memory"]["source"] == "runtime"
    # The V1 door loads too.
    r = await client.post("/v1/models/m1:predict", json={"instances": IRIS_ROW})
    assert r.status_code == 200, r.text
    assert index_of(server)["m1"]["state"] == "READY"


async def test_eviction_under_concurrent_load_zero_failures(serve, tmp_path, iris_bytes):
    folder = sklearn_folder(tmp_path / "models", iris_bytes, 12)
    server, client = await serve(model_repository=str(folder), max_loaded_models=3)
    rng = random.Random(7)
    failures = []

    async def worker(n: int) -> None:
        for _ in range(n):
            name = f"m{rng.randrange(12)}"
            if rng.random() < 0.5:
                r = await client.post(f"/v2/models/{name}/infer", json=v2_body())
            else:
                r = await client.post(f"/v1/models/{name}:predict", json={"instances": IRIS_ROW})
            if r.status_code != 200:
                failures.append((name, r.status_code, r.text))

    await asyncio.gather(*(worker(25) for _ in range(8)))
    assert failures == []
    index = index_of(server)
    resident = [n for n, m in index.items() if m["state"] in ("READY", "LOADING")]
    assert len(resident) <= 3
    evicted = [m for m in index.values() if m["state"] == "EVICTED"]
    assert evicted and all(m["reason"] == "evicted: LRU, max_loaded_models 3" for m in evicted)
    text = (await client.get("/metrics")).text
    assert metric(text, "modelport_model_evictions_total{reason=\"LRU\"}") >= 9
    assert metric(text, "modelport_model_loads_total{result=\"ok\"}") >= 12
    assert metric(text, "modelport_models_max_loaded") == 3
    assert metric(text, "modelport_model_cold_start_seconds_count") >= 12
    assert metric(text, "modelport_model_memory_bytes_in_use") > 0
    assert metric(text, "modelport_model_memory_budget_bytes") == 0


async def test_one_load_per_model_under_a_burst(serve, tmp_path):
    folder = tmp_path / "burst"
    sized_model(folder, "slow-load", load_delay=0.3)
    server, client = await serve(model_repository=str(folder), max_loaded_models=4)
    answers = await asyncio.gather(*(client.post("/v2/models/slow-load/infer", json=v2_body()) for _ in range(20)))
    assert [a.status_code for a in answers] == [200] * 20
    assert counter(folder).loads == 1
    assert index_of(server)["slow-load"]["loads"] == 1


async def test_burst_of_cold_models_is_answered_with_bounded_loads(serve, tmp_path):
    folder = tmp_path / "cold_burst"
    for i in range(12):
        sized_model(folder, f"c{i}", load_delay=0.05)
    server, client = await serve(model_repository=str(folder), max_loaded_models=20, max_concurrent_loads=2)
    answers = await asyncio.gather(*(client.post(f"/v2/models/c{i}/infer", json=v2_body()) for i in range(12)))
    assert [a.status_code for a in answers] == [200] * 12
    assert counter(folder).loads == 12 and counter(folder).max_active <= 2
    assert metric((await client.get("/metrics")).text, "modelport_model_loads_running_peak") == counter(folder).max_active


async def test_a_busy_model_is_never_evicted(serve, tmp_path):
    folder = tmp_path / "busy"
    sized_model(folder, "slow", delay=1.0)
    for name in ("a", "b", "c"):
        sized_model(folder, name)
    server, client = await serve(model_repository=str(folder), max_loaded_models=2)
    slow = asyncio.ensure_future(client.post("/v2/models/slow/infer", json=v2_body()))
    await wait_for(lambda: server.repository._find("slow", None).in_flight == 1)
    for name in ("a", "b", "c", "a"):  # each needs room; only the idle one may go
        r = await client.post(f"/v2/models/{name}/infer", json=v2_body())
        assert r.status_code == 200, r.text
    assert (await slow).status_code == 200
    item = index_of(server)["slow"]
    assert item["state"] == "READY" and item["loads"] == 1


async def test_budget_full_of_busy_models_is_a_clear_503(serve, tmp_path):
    folder = tmp_path / "full"
    sized_model(folder, "slow", delay=2.0)
    sized_model(folder, "other")
    server, client = await serve(model_repository=str(folder), max_loaded_models=1, eviction_wait=0.2)
    slow = asyncio.ensure_future(client.post("/v2/models/slow/infer", json=v2_body()))
    await wait_for(lambda: server.repository._find("slow", None).in_flight == 1)
    r = await client.post("/v2/models/other/infer", json=v2_body())
    assert r.status_code == 503
    assert "budget is full" in r.json()["error"] and "max_loaded_models 1" in r.json()["error"]
    assert (await slow).status_code == 200
    assert (await client.get("/v2/health/ready")).status_code == 200
    assert index_of(server)["other"]["state"] == "REGISTERED"  # not the model's fault: no back-off
    assert "budget is full" in index_of(server)["other"]["reason"]
    text = (await client.get("/metrics")).text
    assert metric(text, "modelport_model_loads_total{result=\"budget_full\"}") == 1
    # Once the slow one is idle there is room: the next request loads it.
    r = await client.post("/v2/models/other/infer", json=v2_body())
    assert r.status_code == 200, r.text


async def test_failed_load_is_503_for_all_waiters_then_retried(serve, tmp_path):
    folder = tmp_path / "failing"
    model_dir = sized_model(folder, "flaky", load_delay=0.1)
    (model_dir / "broken").write_text("")
    server, client = await serve(model_repository=str(folder), max_loaded_models=2, load_retry_after=0.5)
    answers = await asyncio.gather(*(client.post("/v2/models/flaky/infer", json=v2_body()) for _ in range(5)))
    assert [a.status_code for a in answers] == [503] * 5
    assert all("weights are corrupt" in a.json()["error"] for a in answers)
    item = index_of(server)["flaky"]
    assert item["state"] == "FAILED" and "weights are corrupt" in item["reason"]
    assert (await client.get("/v2/health/ready")).status_code == 200  # one broken model: server still ready
    # Within the back-off: not reloaded in a loop, answered at once with the reason.
    r = await client.post("/v2/models/flaky/infer", json=v2_body())
    assert r.status_code == 503 and "next load attempt" in r.json()["error"]
    assert (await client.get("/v2/models/flaky/ready")).status_code == 503
    (model_dir / "broken").unlink()

    async def served() -> bool:
        return (await client.post("/v2/models/flaky/infer", json=v2_body())).status_code == 200

    deadline = asyncio.get_running_loop().time() + 10
    while not await served():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    assert index_of(server)["flaky"]["state"] == "READY"
    text = (await client.get("/metrics")).text
    assert metric(text, "modelport_model_loads_total{result=\"failed\"}") >= 1


async def test_pinned_model_loads_at_start_and_is_never_evicted(serve, tmp_path):
    folder = tmp_path / "pinned"
    sized_model(folder, "hot", pinned=True)
    for i in range(5):
        sized_model(folder, f"p{i}")
    server, client = await serve(model_repository=str(folder), max_loaded_models=2)
    assert index_of(server)["hot"]["state"] == "READY" and index_of(server)["hot"]["pinned"] is True
    for i in list(range(5)) * 2:
        r = await client.post(f"/v2/models/p{i}/infer", json=v2_body())
        assert r.status_code == 200, r.text
    item = index_of(server)["hot"]
    assert item["state"] == "READY" and item["loads"] == 1


async def test_memory_budget_with_known_sizes(serve, tmp_path):
    folder = tmp_path / "budget"
    for i in range(6):
        sized_model(folder, f"s{i}", size=1024 * 1024)
    server, client = await serve(model_repository=str(folder), memory_budget="3.5MiB")
    for i in list(range(6)) * 2:
        r = await client.post(f"/v2/models/s{i}/infer", json=v2_body())
        assert r.status_code == 200, r.text
        resident = [m for m in index_of(server).values() if m["state"] in ("READY", "LOADING")]
        assert len(resident) <= 3
        assert sum(m["memory"]["bytes"] for m in resident) <= 3.5 * 1024 * 1024
    item = index_of(server)["s5"]
    # The array's bytes, plus the Python objects around it (the model's attributes).
    assert item["memory"]["source"] == "runtime" and 1024 * 1024 <= item["memory"]["bytes"] < 1024 * 1024 + 64 * 1024
    evicted = [m for m in index_of(server).values() if m["state"] == "EVICTED"]
    assert evicted and evicted[0]["reason"] == "evicted: LRU, budget 3.5MiB"
    stats = (await client.get("/v2/models/s5/stats")).json()["model_stats"][0]
    assert stats["memory_usage"] == [{"type": "CPU", "id": 0, "byte_size": item["memory"]["bytes"]}]
    text = (await client.get("/metrics")).text
    assert metric(text, "modelport_model_memory_budget_bytes") == 3.5 * 1024 * 1024
    assert metric(text, "modelport_model_memory_bytes_in_use") <= 3.5 * 1024 * 1024


async def test_without_limits_everything_loads_at_start(serve, tmp_path, iris_bytes):
    folder = sklearn_folder(tmp_path / "models", iris_bytes, 3)
    server, client = await serve(model_repository=str(folder))
    index = index_of(server)
    assert {m["state"] for m in index.values()} == {"READY"}
    assert all("memory" not in m for m in index.values())
    assert "modelport_model_loads" not in (await client.get("/metrics")).text


async def test_explicit_unload_wins_and_explicit_load_counts(serve, tmp_path):
    folder = tmp_path / "explicit"
    for i in range(3):
        sized_model(folder, f"e{i}")
    server, client = await serve(model_repository=str(folder), max_loaded_models=2)
    assert (await client.post("/v2/models/e0/infer", json=v2_body())).status_code == 200
    assert (await client.post("/v2/repository/models/e0/unload")).status_code == 200
    r = await client.post("/v2/models/e0/infer", json=v2_body())
    assert r.status_code == 503 and "unloaded" in r.json()["error"]  # not reloaded behind the operator's back
    assert index_of(server)["e0"]["state"] == "UNAVAILABLE"
    # An explicit load loads now (the answer means ready) and takes a place under the limit.
    assert (await client.post("/v2/repository/models/e1/load")).status_code == 200
    assert index_of(server)["e1"]["state"] == "READY"
    assert (await client.post("/v2/repository/models/e0/load")).status_code == 200
    assert (await client.post("/v2/repository/models/e2/load")).status_code == 200
    resident = [n for n, m in index_of(server).items() if m["state"] == "READY"]
    assert len(resident) == 2 and "e2" in resident
    assert (await client.post("/v2/models/e0/infer", json=v2_body())).status_code == 200


async def test_a_model_that_reports_its_own_size(serve, tmp_path):
    folder = tmp_path / "declared"
    for i in range(3):
        sized_model(folder, f"d{i}", declared=5_000_000)
    server, client = await serve(model_repository=str(folder), memory_budget="12MB")
    for i in range(3):
        assert (await client.post(f"/v2/models/d{i}/infer", json=v2_body())).status_code == 200
    index = index_of(server)
    assert index["d2"]["memory"] == {"bytes": 5_000_000, "source": "model"}
    assert [index[f"d{i}"]["state"] for i in range(3)] == ["EVICTED", "READY", "READY"]
    assert index["d0"]["reason"] == "evicted: LRU, budget 12MB"  # as the setting says it

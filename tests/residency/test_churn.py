"""A long load/evict churn keeps memory flat (in-process): the same models loaded and evicted a
thousand times leave neither Python objects (tracemalloc) nor native allocations (the C heap) nor
model instances behind. Memory is what is measured, not time."""

from __future__ import annotations

import gc
import tracemalloc
import weakref

from .conftest import index_of, malloc_in_use, metric, sklearn_folder, v2_body, xgboost_model

CYCLES = 1000  # requests, each one a load and an eviction
MiB = 1024 * 1024


async def test_load_evict_churn_keeps_memory_flat(serve, tmp_path, iris_bytes):
    folder = sklearn_folder(tmp_path / "models", iris_bytes, 1, prefix="sk")
    xgboost_model(folder, "xgb")
    server, client = await serve(model_repository=str(folder), max_loaded_models=1)
    names = ["sk0", "xgb"]
    instances: weakref.WeakSet = weakref.WeakSet()  # every model instance that served

    async def churn(cycles: int) -> None:
        for i in range(cycles):
            r = await client.post(f"/v2/models/{names[i % 2]}/infer", json=v2_body())
            assert r.status_code == 200, r.text
            assert "x-modelport-load-seconds" in r.headers  # one model fits: every request loads
            instances.update(server.repository._find(n, None).model for n in names)

    await churn(60)  # libraries imported, buffers and caches at their working size
    tracemalloc.start()
    try:
        gc.collect()
        traced, heap = tracemalloc.get_traced_memory()[0], malloc_in_use()
        await churn(CYCLES)
        gc.collect()
        traced_growth = tracemalloc.get_traced_memory()[0] - traced
        heap_growth = None if heap is None else malloc_in_use() - heap
    finally:
        tracemalloc.stop()
    # What grows: the health view's ring of recent requests (~110 B a request, bounded per model).
    assert traced_growth < 1 * MiB, f"Python allocations grew {traced_growth / MiB:.2f} MiB over {CYCLES} load/evict cycles"
    # Native memory: XGBoost keeps a per-thread buffer per booster that is freed only on the thread that
    # frees the booster; measuring on a pooled thread left ~42 KB per XGBoost load (~21 MiB here).
    if heap_growth is not None:
        assert heap_growth < 6 * MiB, f"the C heap grew {heap_growth / MiB:.2f} MiB over {CYCLES} load/evict cycles"
    gc.collect()
    assert len(instances) <= len(names)  # evicted instances are freed: one (loaded or fresh) per model
    text = (await client.get("/metrics")).text
    assert metric(text, 'modelport_model_evictions_total{reason="LRU"}') >= CYCLES
    assert {m["state"] for m in index_of(server).values()} == {"READY", "EVICTED"}


async def test_evicted_instances_are_freed_with_their_controls(serve, tmp_path, iris_bytes):
    """A response cache, a rate limit and a payload logger belong to a model instance: an eviction
    drops them with it (its cache is empty after the reload; one payload logger per model lives on)."""
    events = tmp_path / "events.jsonl"
    folder = sklearn_folder(tmp_path / "models", iris_bytes, 2, response_cache=True, rate_limit="100000/second",
                            payload_log={"file": str(events), "mode": "request"})
    server, client = await serve(model_repository=str(folder), max_loaded_models=1)
    instances: weakref.WeakSet = weakref.WeakSet()
    for i in range(40):
        r = await client.post(f"/v2/models/m{i % 2}/infer", json=v2_body())
        assert r.status_code == 200, r.text
        assert r.headers["x-modelport-cache"] == "miss"  # evicted with its cache: answered by a fresh load
        instances.update(server.repository._find(f"m{n}", None).model for n in range(2))
    gc.collect()
    assert len(instances) <= 2
    assert len(server.controls.models) == 2  # one per model: the live instance's
    assert len(server.observability._payload_loggers) <= 2  # the evicted runners' loggers are closed and gone
    assert events.exists()


async def test_registering_makes_no_runner_or_series_until_the_first_load(serve, tmp_path, iris_bytes):
    """Registering thousands of models is cheap: a model's runner, statistics and metric series appear
    at its first load, not before (with 2,000 models they were ~12 KB each and 6 MB of /metrics)."""
    folder = sklearn_folder(tmp_path / "models", iris_bytes, 50)
    server, client = await serve(model_repository=str(folder), max_loaded_models=5)
    text = (await client.get("/metrics")).text
    assert 'model="m7"' not in text
    assert all(server.repository._find(f"m{i}", None).runner is None for i in range(50))
    r = await client.post("/v2/models/m7/infer", json=v2_body())
    assert r.status_code == 200, r.text
    text = (await client.get("/metrics")).text
    assert 'modelport_inference_stats_count_total{kind="success",model="m7",version=""} 1.0' in text
    assert 'model="m8"' not in text
    stats = (await client.get("/v2/models/m8/stats")).json()  # a model never loaded: zeros, not an error
    assert stats["model_stats"][0]["inference_count"] == 0


async def test_every_evicted_model_and_its_booster_is_freed(serve, tmp_path, iris_bytes):
    """Many distinct models through a small budget (no allocation can be reused by the same model):
    after each pass and a gc, only the resident instances and their XGBoost boosters are alive, and a
    model that has served keeps a handful of metric series, not one per kind it never used."""
    import shutil

    folder = sklearn_folder(tmp_path / "models", iris_bytes, 6, prefix="sk")
    xgboost_model(folder, "xgb0")
    for i in range(1, 6):  # the same booster file under other names: one training
        shutil.copytree(folder / "xgb0", folder / f"xgb{i}")
        (folder / f"xgb{i}" / "model-settings.json").write_text(f'{{"name": "xgb{i}", "implementation": "xgboost"}}')
    names = [f"{kind}{i}" for i in range(6) for kind in ("sk", "xgb")]
    server, client = await serve(model_repository=str(folder), max_loaded_models=2)
    models: list[weakref.ref] = []
    boosters: list[weakref.ref] = []
    for _ in range(3):
        for name in names:
            r = await client.post(f"/v2/models/{name}/infer", json=v2_body())
            assert r.status_code == 200, r.text
            model = server.repository._find(name, None).model
            models.append(weakref.ref(model))
            if getattr(model, "_booster", None) is not None:
                boosters.append(weakref.ref(model._booster))
            del model
        gc.collect()
        assert sum(ref() is not None for ref in models) <= 2, "an evicted model instance is still referenced"
        assert sum(ref() is not None for ref in boosters) <= 2, "an evicted model's booster is still referenced"
    # All the while the heap stayed frozen (serving/heap.py): the built-in runtimes hold no cycles.
    assert server.dataplane.freezer.frozen and not server.dataplane.freezer.given_up
    text = (await client.get("/metrics")).text
    series = [line for line in text.splitlines() if 'model="sk3"' in line and not line.startswith("#")]
    # success and compute_infer counts and seconds, the last-inference gauge, and the request and predict
    # histograms (buckets, sum, count): no zero series for fail, queue, cache or stages it never ran.
    assert not [line for line in series if 'kind="' in line and not any(k in line for k in ('kind="success"', 'kind="compute_infer"'))]
    assert len([line for line in series if line.startswith("modelport_inference_stats") and "_total{" in line]) == 4, series

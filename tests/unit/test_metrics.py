"""Metrics series exist for what a model does, so many models keep /metrics small."""

import pytest

from modelport.metrics import Metrics


def test_series_appear_for_the_stages_a_model_runs_and_batching_only_when_it_batches():
    metrics = Metrics()
    observe = metrics.stage_observer("plain")
    metrics.batch_observer("plain")  # made for every model; a model that never batches never calls it
    text = metrics.render().decode()
    assert 'model="plain"' not in text
    observe("predict", 0.002)
    text = metrics.render().decode()
    assert 'modelport_stage_duration_seconds_count{model="plain",stage="predict"} 1.0' in text
    assert 'stage="preprocess"' not in text and 'modelport_batch_size_count{model="plain"}' not in text
    metrics.batch_observer("batched")(4, [0.001] * 4)
    text = metrics.render().decode()
    assert 'modelport_batch_size_count{model="batched"} 1.0' in text
    assert 'modelport_batch_queue_seconds_count{model="batched"} 4.0' in text


def test_fast_observers_record_what_the_public_calls_record():
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from modelport.metrics import _BUCKETS, counter_adder, histogram_observer

    registry = CollectorRegistry()
    public = Histogram("a_seconds", "", ["m"], buckets=_BUCKETS, registry=registry).labels("x")
    fast_child = Histogram("b_seconds", "", ["m"], buckets=_BUCKETS, registry=registry).labels("x")
    fast = histogram_observer(fast_child)
    # Every bound exactly, just either side of it, zero, and past the last finite bound.
    values = [0.0, 100.0] + [v for b in _BUCKETS for v in (b, b * 0.999, b * 1.001)]
    for v in values:
        public.observe(v)
        fast(v)

    def samples(name):
        return [(s.name.removeprefix(name), s.labels, s.value) for f in registry.collect() if f.name == name
                for s in f.samples if not s.name.endswith("_created")]

    assert samples("a_seconds") == samples("b_seconds") and samples("a_seconds")
    counted = Counter("c", "", ["m"], registry=registry).labels("x")
    add = counter_adder(counted)
    add(1)
    add(0.25)
    assert counted._value.get() == 1.25


def _samples(registry, name):
    return [(s.name.removeprefix(name), s.labels, s.value) for f in registry.collect() if f.name == name
            for s in f.samples if not s.name.endswith("_created")]


def test_lean_series_expose_what_prometheus_client_series_expose():
    """Same observations into prometheus_client's Histogram/Counter and the lean ones (public calls
    and the fast observers): the same samples, so /metrics and the statistics read the same."""
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from modelport.metrics import _BUCKETS, counter_adder, histogram_observer
    from modelport.observability.metrics import LeanCounter, LeanHistogram

    registry = CollectorRegistry()
    plain = Histogram("a_seconds", "", ["m"], buckets=_BUCKETS, registry=registry)
    lean = LeanHistogram("b_seconds", "", ["m"], buckets=_BUCKETS, registry=registry)
    values = [0.0, 100.0] + [v for b in _BUCKETS for v in (b, b * 0.999, b * 1.001)]
    for model in ("x", "y"):
        fast = histogram_observer(lean.labels(model))
        for i, v in enumerate(values):
            plain.labels(model).observe(v)
            (fast if i % 2 else lean.labels(model).observe)(v)
    assert _samples(registry, "a_seconds") == _samples(registry, "b_seconds") and _samples(registry, "a_seconds")
    counts = Counter("c", "", ["m"], registry=registry)
    lean_counts = LeanCounter("d", "", ["m"], registry=registry)
    add = counter_adder(lean_counts.labels("x"))
    for amount in (1, 0.25, 3):
        counts.labels("x").inc(amount)
        add(amount)
    lean_counts.labels("y").inc()
    counts.labels("y").inc()
    assert _samples(registry, "c") == _samples(registry, "d")
    assert ("_total", {"m": "x"}, 4.25) in _samples(registry, "d")
    try:
        lean_counts.labels("x").inc(-1)
    except ValueError:
        pass
    else:
        raise AssertionError("a counter went down")


def test_a_lean_series_is_a_handful_of_objects_for_the_collector():
    """Every full garbage collection walks every series of every model that has served: a lean
    histogram series with its fast observer is a few tracked objects, prometheus_client's ~50."""
    import gc

    from prometheus_client import CollectorRegistry, Histogram

    from modelport.metrics import _BUCKETS, histogram_observer
    from modelport.observability.metrics import LeanHistogram

    def tracked_per_series(cls) -> float:
        metric = cls("h_seconds", "", ["m"], buckets=_BUCKETS, registry=CollectorRegistry())
        keep = []
        gc.collect()
        before = len(gc.get_objects())
        for i in range(100):
            keep.append(histogram_observer(metric.labels(f"model-{i}")))
        gc.collect()
        return (len(gc.get_objects()) - before) / 100

    lean, plain = tracked_per_series(LeanHistogram), tracked_per_series(Histogram)
    assert lean <= 8 and plain >= 4 * lean, (lean, plain)


def test_with_workers_lean_series_are_prometheus_client_files():
    """workers > 1: children made after the switch keep their numbers in the shared files, and the
    fast observers write there (observability/multiprocess.py reads them)."""
    from prometheus_client import CollectorRegistry

    from modelport.metrics import _BUCKETS, counter_adder, histogram_observer
    from modelport.observability.metrics import LeanCounter, LeanHistogram
    from modelport.observability.multiprocess import samples, shared_metrics_dir

    with shared_metrics_dir() as path:
        registry = CollectorRegistry()
        child = LeanHistogram("mp_seconds", "", ["m"], buckets=_BUCKETS, registry=registry).labels("x")
        counted = LeanCounter("mp_events", "", ["m"], registry=registry).labels("x")
        assert child._cells is None and counted._cell is None
        histogram_observer(child)(0.003)
        counter_adder(counted)(2)
        found = {(s.name, s.labels.get("le")): s.value for s in samples(path)}
    assert found[("mp_seconds_bucket", "0.005")] == 1.0 and found[("mp_seconds_sum", None)] == 0.003
    assert found[("mp_events_total", None)] == 2.0


@pytest.mark.parametrize("parts", ["all", "histogram", "pair"])
@pytest.mark.parametrize("lean", [True, False])
def test_timing_tally_records_what_the_separate_calls_record(parts, lean):
    """One tally (a histogram child and a Triton count/seconds pair, any part absent) leaves the
    same samples as the public observe and inc calls; lean (one lock) or prometheus_client's own
    series (workers > 1: their calls in turn)."""
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from modelport.metrics import _BUCKETS
    from modelport.observability.metrics import LeanCounter, LeanHistogram, timing_tally

    registry = CollectorRegistry()
    hist, count = (LeanHistogram, LeanCounter) if lean else (Histogram, Counter)
    series = {}
    for side in ("public", "tally"):
        series[side] = (hist(f"{side}_h", "", ["m"], buckets=_BUCKETS, registry=registry).labels("x"),
                        count(f"{side}_n", "", ["m"], registry=registry).labels("x"),
                        count(f"{side}_s", "", ["m"], registry=registry).labels("x"))
    h, n, s = series["tally"]
    tally = timing_tally(h if parts != "pair" else None, *((n, s) if parts != "histogram" else (None, None)))
    values = [0.0, 100.0] + [v for b in _BUCKETS for v in (b, b * 0.999, b * 1.001)]
    ph, pn, ps = series["public"]
    for v in values:
        tally(v)
        if parts != "pair":
            ph.observe(v)
        if parts != "histogram":
            pn.inc(1)
            ps.inc(v)
    for suffix in ("_h", "_n", "_s"):
        assert _samples(registry, "public" + suffix) == _samples(registry, "tally" + suffix)
    assert _samples(registry, "public_n" if parts != "histogram" else "public_h")[0][2] > 0
    assert timing_tally(None, None, None)(1.0) is None  # metrics and statistics off: nothing to count

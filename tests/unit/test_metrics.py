"""Metrics series exist for what a model does, so many models keep /metrics small."""

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

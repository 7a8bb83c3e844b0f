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

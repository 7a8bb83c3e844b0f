"""``workers > 1``: metrics and statistics summed over every front-end process.

The supervisor makes a private directory and switches prometheus_client to its multiprocess values
before it forks (each worker's counters then live in memory-mapped files there); whichever worker
answers ``/metrics`` or a statistics call reads all the files. The in-flight gauge and the health
view stay per process (they describe the process that answers)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import Any, Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def shared_metrics_dir() -> Iterator[str]:
    """A fresh directory for the workers' metric files, removed when they have all exited."""
    path = tempfile.mkdtemp(prefix="modelport-metrics-")
    previous_env, previous_class = os.environ.get(ENV), values.ValueClass
    os.environ[ENV] = path
    values.ValueClass = values.MultiProcessValue()  # label children made after this live in files
    try:
        yield path
    finally:
        values.ValueClass = previous_class
        if previous_env is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous_env
        shutil.rmtree(path, ignore_errors=True)


def samples(path: str) -> Iterable[Any]:
    for family in MultiProcessCollector(None, path=path).collect():
        yield from family.samples


class _Collector:
    def __init__(self, path: str, metrics: Any):
        self.path, self.metrics = path, metrics

    def collect(self) -> Iterator:
        requests = CounterMetricFamily("modelport_requests", "Requests served", labels=["model", "protocol"])
        for family in MultiProcessCollector(None, path=self.path).collect():
            yield family
            if family.name == "modelport_request_duration_seconds":
                for s in family.samples:
                    if s.name.endswith("_count"):
                        requests.add_metric([s.labels["model"], s.labels["protocol"]], s.value)
        yield requests
        in_flight = GaugeMetricFamily("modelport_requests_in_flight", "Requests being served now (this process)", labels=["model"])
        for model, count in sorted(self.metrics.in_flight_source().items()):
            in_flight.add_metric([model], count)
        yield in_flight


def render(path: str, metrics: Any) -> bytes:
    registry = CollectorRegistry()
    registry.register(_Collector(path, metrics))
    return generate_latest(registry)

"""Prometheus metrics. One registry per server, created by the composition root and passed in."""

from __future__ import annotations

import threading
import time
from array import array
from bisect import bisect_left
from functools import partial
from typing import Any, Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client import metrics as _prometheus_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

# Latency buckets from 0.5 ms to 30 s: model servers span both.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

CONTENT_TYPE = CONTENT_TYPE_LATEST

# One lock for every lean series: an add holds it for nanoseconds, and under the GIL it is uncontended.
_LEAN_LOCK = threading.Lock()


def _lean() -> bool:
    """Whether label children made now keep their numbers in this process (prometheus_client's
    default values), not in the memory-mapped files of ``workers > 1`` (observability/multiprocess.py)."""
    return values.ValueClass is values.MutexValue


def _created() -> bool:
    return getattr(_prometheus_metrics, "_use_created", True)


class LeanHistogram(Histogram):
    """A Histogram whose label children keep their buckets and sum in one flat ``array``.

    prometheus_client's child holds a value object with its own lock per bucket: ~50 objects the
    garbage collector tracks, per series. A server with thousands of models keeps several series per
    model that has served, and every full collection walks all of them while requests wait
    (repository/residency.py; bench/many_models.py). An array of doubles is one untracked object.
    Same samples, same exposition; no exemplars. With ``workers > 1`` the children are prometheus_client's own."""

    _cells: array | None = None

    def _metric_init(self) -> None:
        if not _lean():
            return super()._metric_init()
        self._created = time.time()
        self._cells = array("d", bytes(8 * (len(self._upper_bounds) + 1)))  # the buckets, then the sum

    def observe(self, amount: float, exemplar: Any = None) -> None:
        cells = self._cells
        if cells is None:
            return super().observe(amount, exemplar)
        self._raise_if_not_observable()
        _observe_lean(cells, self._upper_bounds, amount)

    def _child_samples(self) -> Iterable[Sample]:
        if self._cells is None:
            return super()._child_samples()
        with _LEAN_LOCK:
            cells = self._cells.tolist()
        samples, acc = [], 0.0
        for bound, count in zip(self._upper_bounds, cells):
            acc += count
            samples.append(Sample("_bucket", {"le": floatToGoString(bound)}, acc, None, None))
        samples.append(Sample("_count", {}, acc, None, None))
        if self._upper_bounds[0] >= 0:
            samples.append(Sample("_sum", {}, cells[-1], None, None))
        if _created():
            samples.append(Sample("_created", {}, self._created, None, None))
        return tuple(samples)


class LeanCounter(Counter):
    """A Counter whose label children keep their total in a one-element ``array`` (see LeanHistogram)."""

    _cell: array | None = None

    def _metric_init(self) -> None:
        if not _lean():
            return super()._metric_init()
        self._created = time.time()
        self._cell = array("d", [0.0])

    def inc(self, amount: float = 1, exemplar: Any = None) -> None:
        cell = self._cell
        if cell is None:
            return super().inc(amount, exemplar)
        self._raise_if_not_observable()
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        _add_lean(cell, amount)

    def reset(self) -> None:
        if self._cell is None:
            return super().reset()
        with _LEAN_LOCK:
            self._cell[0] = 0.0
        self._created = time.time()

    def _child_samples(self) -> Iterable[Sample]:
        if self._cell is None:
            return super()._child_samples()
        sample = Sample("_total", {}, self._cell[0], None, None)
        return (sample, Sample("_created", {}, self._created, None, None)) if _created() else (sample,)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.request_latency = LeanHistogram(
            "modelport_request_duration_seconds", "Time to serve a request, end to end in the data plane",
            ["model", "protocol"], buckets=_BUCKETS, registry=r,
        )
        self.stage_latency = LeanHistogram(
            "modelport_stage_duration_seconds", "Time spent in one model stage",
            ["model", "stage"], buckets=_BUCKETS, registry=r,
        )
        self.failures = LeanCounter(
            "modelport_request_failures", "Requests that ended in an error", ["model", "protocol", "code"], registry=r
        )
        # Read at scrape time, not counted per request: who is in flight per model (the data plane
        # tracks that anyway, for backpressure and unloading).
        self.in_flight_source: Callable[[], dict[str, int]] = dict
        r.register(_Derived(self))
        self.batch_size = LeanHistogram(
            "modelport_batch_size", "Requests merged into one predict", ["model"], buckets=_BATCH_BUCKETS, registry=r
        )
        self.queue_time = LeanHistogram(
            "modelport_batch_queue_seconds", "Time a request waited for its batch", ["model"], buckets=_BUCKETS, registry=r
        )

    # Label children are made on first use, so a model exports series only for the stages it runs and,
    # if it batches, its batch histograms (with 200 models, eager children made /metrics 2.4 MB).
    def stage_observer(self, model: str, recorder: Any = None) -> Callable[[str, float], None]:
        """A fast ``observe(stage, seconds)`` for one model, with its label children looked up once;
        with the model's statistics ``recorder`` (stats.ModelRecorder), its series for the stage are
        counted in the same tally (timing_tally)."""
        tallies: dict = {}

        def observe(stage: str, seconds: float) -> None:
            tally = tallies.get(stage)
            if tally is None:
                pair = recorder.stage_series(stage) if recorder is not None else None
                tally = tallies[stage] = timing_tally(self.stage_latency.labels(model, stage), *(pair or (None, None)))
            tally(seconds)

        return observe

    def batch_observer(self, model: str) -> Callable[[int, list], None]:
        """``observe(batch_size, waits)`` for one model's batcher: once per batch, a wait per request."""
        children: list = []

        def observe(batch_size: int, waits: list) -> None:
            if not children:
                children.extend((self.batch_size.labels(model), self.queue_time.labels(model)))
            size, queued = children
            size.observe(batch_size)
            for seconds in waits:
                queued.observe(seconds)

        return observe

    def render(self) -> bytes:
        return generate_latest(self.registry)


def histogram_observer(child: Any) -> Callable[[float], None]:
    """``child.observe`` for one label child of a Histogram, as the request path calls it per request:
    the sum and the one bucket (found by bisection), without prometheus_client's per-call checks (a
    child made by ``labels()`` is observable; a duration is never NaN). Exact, and the same values
    underneath (with ``workers > 1`` the memory-mapped ones). Any other library layout: the public call."""
    cells = getattr(child, "_cells", None)
    if cells is not None:  # a LeanHistogram's child; a partial is 2 tracked objects, a closure 5
        return partial(_observe_lean, cells, child._upper_bounds)
    try:
        bounds, incs, add = list(child._upper_bounds), [b.inc for b in child._buckets], child._sum.inc
    except AttributeError:  # pragma: no cover - a prometheus_client without these internals
        return child.observe
    if len(bounds) != len(incs) or bounds[-1] != float("inf"):  # pragma: no cover - as above
        return child.observe

    def observe(amount: float) -> None:
        add(amount)
        incs[bisect_left(bounds, amount)](1)  # the first bucket whose bound is >= amount, as observe() picks

    return observe


def _observe_lean(cells: array, bounds: list, amount: float) -> None:
    with _LEAN_LOCK:
        cells[bisect_left(bounds, amount)] += 1
        cells[-1] += amount


def _add_lean(cell: array, amount: float) -> None:
    with _LEAN_LOCK:
        cell[0] += amount


def timing_tally(histogram: Any = None, count: Any = None, seconds: Any = None) -> Callable[[float], None]:
    """``tally(amount)``: a duration into a Histogram child and a Counter pair (``count`` +1, ``seconds``
    +amount: a Triton statistics kind) together. Each is optional (metrics or statistics off). When
    they are lean, one hold of the lock they share updates all three (the request path paid three
    holds and five calls for it); with ``workers > 1`` their own calls in turn. The same numbers."""
    if count is None or seconds is None:
        return histogram_observer(histogram) if histogram is not None else _ignore
    n_cell, s_cell = getattr(count, "_cell", None), getattr(seconds, "_cell", None)
    if n_cell is not None and s_cell is not None:
        if histogram is None:
            return partial(_add_pair, n_cell, s_cell)
        cells = getattr(histogram, "_cells", None)
        if cells is not None:
            return partial(_observe_timing, cells, histogram._upper_bounds, n_cell, s_cell)
    observe = histogram_observer(histogram) if histogram is not None else _ignore
    add_count, add_seconds = counter_adder(count), counter_adder(seconds)

    def tally(amount: float) -> None:
        observe(amount)
        add_count(1)
        add_seconds(amount)

    return tally


def _observe_timing(cells: array, bounds: list, n_cell: array, s_cell: array, amount: float) -> None:
    with _LEAN_LOCK:
        cells[bisect_left(bounds, amount)] += 1
        cells[-1] += amount
        n_cell[0] += 1
        s_cell[0] += amount


def _add_pair(n_cell: array, s_cell: array, amount: float) -> None:
    with _LEAN_LOCK:
        n_cell[0] += 1
        s_cell[0] += amount


def _ignore(amount: float) -> None:
    pass


def counter_adder(child: Any) -> Callable[[float], None]:
    """``child.inc`` for one label child of a Counter, for amounts known to be >= 0 (counts, durations):
    the value's own locked add, without the per-call checks. Any other layout: the public call."""
    cell = getattr(child, "_cell", None)
    if cell is not None:  # a LeanCounter's child
        return partial(_add_lean, cell)
    value = getattr(child, "_value", None)
    return value.inc if value is not None and callable(getattr(value, "inc", None)) else child.inc


class _Derived:
    """Metrics computed when scraped, so the request path pays for one histogram observation only:
    the request counter is the latency histogram's count, the in-flight gauge the data plane's count."""

    def __init__(self, metrics: Metrics):
        self._metrics = metrics

    def collect(self) -> Iterator:
        requests = CounterMetricFamily("modelport_requests", "Requests served", labels=["model", "protocol"])
        for family in self._metrics.request_latency.collect():
            for sample in family.samples:
                if sample.name.endswith("_count"):
                    requests.add_metric([sample.labels["model"], sample.labels["protocol"]], sample.value)
        yield requests
        in_flight = GaugeMetricFamily("modelport_requests_in_flight", "Requests being served now", labels=["model"])
        for model, count in sorted(self._metrics.in_flight_source().items()):
            in_flight.add_metric([model], count)
        yield in_flight

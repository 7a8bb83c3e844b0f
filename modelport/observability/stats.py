"""Triton's statistics extension and a per-model health view.

The counts and durations are Prometheus counters labelled by model, version and kind. A request's
success and its hook stages are counted in the same tally as the metrics' histograms for them
(metrics.timing_tally: one hold of their shared lock); with ``workers > 1``, prometheus_client's
multiprocess mode sums them across processes like every other metric. What each kind measures:

- ``success`` / ``fail``: requests that finished well / with an error, end to end in the data plane
  (the same timer as ``modelport_request_duration_seconds``);
- ``queue``: waiting for a batch (only models with adaptive batching wait);
- ``compute_input`` / ``compute_infer`` / ``compute_output``: the preprocess, predict and postprocess hooks;
- ``cache_hit`` / ``cache_miss``: reported as zero until a response cache records into them.

``execution_count`` is the number of ``predict`` runs (one per batch); ``inference_count`` counts
successful requests. The health view keeps each process's last requests in a bounded ring and reads
the error rate and latency percentiles over a recent window from it.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from prometheus_client import CollectorRegistry, Gauge

from .metrics import LeanCounter, counter_adder

KINDS = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output", "cache_hit", "cache_miss")
STAGE_KIND = {"preprocess": "compute_input", "predict": "compute_infer", "postprocess": "compute_output"}
_COUNT = "modelport_inference_stats_count"
_SECONDS = "modelport_inference_stats_seconds"
_LAST = "modelport_last_inference_timestamp_ms"


@dataclass
class HealthThresholds:
    window: float = 60.0  # seconds of recent requests the view looks at
    degraded_error_rate: float = 0.05
    failed_error_rate: float = 0.5
    degraded_p99: float = 0.0  # seconds; 0: latency never degrades a model
    min_requests: int = 1  # fewer requests than this in the window: healthy (nothing to judge)
    ring: int = 4096  # requests remembered per model and process


class ModelRecorder:
    """One model version's counters with their label children resolved once. Only the kinds every
    served model records (success, compute_infer) and the last-inference gauge are made up front; the
    others (fail, queue, compute_input/output, cache_hit/miss) at their first event: each label child
    costs ~1 KB, and a server with thousands of registered models (residency.py) keeps one recorder
    per model that has served. The statistics read a kind without a series as zero."""

    __slots__ = ("_count", "_seconds", "_key", "_series", "_ok_n", "_ok_s", "_fail", "_last", "_last_child",
                 "_stages", "_queue", "_cache", "recent")

    def __init__(self, stats: "Statistics", model: str, version: str):
        self._count, self._seconds, self._key = stats.count, stats.seconds, (model, version)
        self._series: dict[str, tuple[Any, Any]] = {}
        self._ok_n, self._ok_s = self._pair("success")
        self._fail: tuple | None = None
        self._queue: tuple | None = None
        self._stages = {"predict": self._pair("compute_infer")}  # the others at their first run
        self._cache: dict[str, tuple] = {}
        last = self._last_child = stats.last.labels(model, version)
        value = getattr(last, "_value", None)  # the gauge's own set, as counter_adder (a "max" gauge: no timestamp)
        self._last = value.set if value is not None and not getattr(last, "_is_most_recent", False) else last.set
        self.recent: deque = deque(maxlen=stats.thresholds.ring)

    def _pair(self, kind: str) -> tuple[Callable[[float], None], Callable[[float], None]]:
        # The children's adders, resolved once: a request pays two locked adds, no checks (metrics.py).
        n, s = self._count.labels(*self._key, kind), self._seconds.labels(*self._key, kind)
        self._series[kind] = (n, s)
        return counter_adder(n), counter_adder(s)

    def request(self, seconds: float, ok: bool) -> None:
        if ok:
            self._ok_n(1)
            self._ok_s(seconds)
        else:
            if self._fail is None:
                self._fail = self._pair("fail")
            self._fail[0](1)
            self._fail[1](seconds)
        self.served(time.perf_counter(), seconds, ok)

    def served(self, now: float, seconds: float, ok: bool) -> None:
        """A finished request, less its success or fail counts (``request`` adds them; the data plane
        counts a success in its latency tally): the last-inference time and the health view's ring.
        ``now``: time.perf_counter() when it finished (the data plane's clock already)."""
        if ok:
            self._last(time.time() * 1000.0)
        self.recent.append((now, seconds, ok))

    def success_series(self) -> tuple[Any, Any]:
        """The (count, seconds) children of "success", for a caller that counts successes itself."""
        return self._series["success"]

    def stage(self, stage: str, seconds: float) -> None:
        pair = self._stages.get(stage)
        if pair is None:
            kind = STAGE_KIND.get(stage)
            if kind is None:
                return
            pair = self._stages[stage] = self._pair(kind)
        pair[0](1)
        pair[1](seconds)

    def stage_series(self, stage: str) -> tuple[Any, Any] | None:
        """The (count, seconds) children of a hook stage's kind (made now if new), or None for a stage
        that is not one of Triton's (explain), for a caller that counts the stage itself."""
        kind = STAGE_KIND.get(stage)
        if kind is None:
            return None
        if kind not in self._series:
            self._stages[stage] = self._pair(kind)
        return self._series[kind]

    def cache(self, hit: bool, seconds: float) -> None:
        """For a response cache: a lookup that hit (and how long serving from it took) or missed."""
        kind = "cache_hit" if hit else "cache_miss"
        pair = self._cache.get(kind)
        if pair is None:
            pair = self._cache[kind] = self._pair(kind)
        pair[0](1)
        pair[1](seconds)

    def queued(self, waits: Iterable[float]) -> None:
        for seconds in waits:
            if self._queue is None:
                self._queue = self._pair("queue")
            self._queue[0](1)
            self._queue[1](seconds)

    def children(self) -> Iterable[tuple[str, tuple[Any, Any]]]:
        """(kind, (count child, seconds child)) for every series this recorder has made."""
        return list(self._series.items())


class Statistics:
    def __init__(self, registry: CollectorRegistry | None = None, thresholds: HealthThresholds | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        self.thresholds = thresholds or HealthThresholds()
        labels = ["model", "version", "kind"]
        self.count = LeanCounter(_COUNT, "Triton statistics: events per kind", labels, registry=self.registry)
        self.seconds = LeanCounter(_SECONDS, "Triton statistics: seconds per kind", labels, registry=self.registry)
        self.last = Gauge(_LAST, "When the last successful inference finished (ms since the epoch)",
                          ["model", "version"], registry=self.registry, multiprocess_mode="max")
        self._recorders: dict[tuple[str, str], ModelRecorder] = {}
        # Where the numbers are read from; swapped for the multiprocess collector with workers > 1.
        self.sample_source: Callable[[], Iterable[Any]] = self._own_samples

    def recorder(self, model: str, version: str | None) -> ModelRecorder:
        key = (model, version or "")
        rec = self._recorders.get(key)
        if rec is None:
            rec = self._recorders[key] = ModelRecorder(self, *key)
        return rec

    def _own_samples(self) -> Iterable[Any]:
        for metric in (self.count, self.seconds, self.last):
            for family in metric.collect():
                yield from family.samples

    def _samples_of(self, models: list[tuple[str, str | None]]) -> Iterable[Any]:
        """``_own_samples`` of these models only, read from their recorders (every series is made by
        one): a statistics request for one model costs the same at 2,000 models as at one."""
        for name, version in models:
            rec = self._recorders.get((name, version or ""))
            if rec is None:
                continue
            labels = {"model": name, "version": version or ""}
            for kind, pair in rec.children():
                for child in pair:
                    for family in child.collect():
                        for sample in family.samples:
                            yield sample._replace(labels={**labels, "kind": kind})
            for family in rec._last_child.collect():
                for sample in family.samples:
                    yield sample._replace(labels=labels)

    # -- Triton's statistics, as the REST JSON (the gRPC message has the same shape) ------------
    def model_stats(self, models: list[tuple[str, str | None]]) -> list[dict[str, Any]]:
        """Statistics for each (name, version) asked for, in that order."""
        table: dict[tuple[str, str], dict[str, list[float]]] = {}
        last: dict[tuple[str, str], float] = {}
        few = self.sample_source == self._own_samples and len(models) * 4 < len(self._recorders)
        for s in self._samples_of(models) if few else self.sample_source():
            labels = s.labels
            key = (labels.get("model"), labels.get("version", ""))
            if s.name.startswith(_LAST):
                last[key] = max(last.get(key, 0.0), s.value)
                continue
            if s.name.endswith("_created"):
                continue
            slot = table.setdefault(key, {}).setdefault(labels.get("kind"), [0.0, 0.0])
            slot[0 if s.name.startswith(_COUNT) else 1] += s.value
        out = []
        for name, version in models:
            kinds = table.get((name, version or ""), {})

            def duration(kind: str) -> dict[str, int]:
                n, seconds = kinds.get(kind, (0.0, 0.0))
                return {"count": int(n), "ns": int(round(seconds * 1e9))}

            inference = {kind: duration(kind) for kind in KINDS}
            out.append({
                "name": name,
                "version": version or "",
                "last_inference": int(last.get((name, version or ""), 0.0)),
                "inference_count": inference["success"]["count"],
                "execution_count": inference["compute_infer"]["count"],
                "inference_stats": inference,
                "batch_stats": [],
                "memory_usage": [],
                "response_stats": {},
            })
        return out

    # -- health ------------------------------------------------------------------------------
    def health(self, model: str, version: str | None, ready: bool) -> dict[str, Any]:
        t = self.thresholds
        rec = self._recorders.get((model, version or ""))
        since = time.perf_counter() - t.window
        window = [r for r in (rec.recent if rec is not None else ()) if r[0] >= since]
        errors = sum(1 for r in window if not r[2])
        latencies = sorted(r[1] for r in window)
        rate = errors / len(window) if window else 0.0
        p50, p99 = _percentile(latencies, 0.50), _percentile(latencies, 0.99)
        reasons = []
        status = "healthy"
        if not ready:
            status, reasons = "failed", ["model is not ready"]
        elif len(window) >= t.min_requests:
            if rate >= t.failed_error_rate:
                status = "failed"
                reasons.append(f"error rate {rate:.3f} >= {t.failed_error_rate:g}")
            elif rate > t.degraded_error_rate:
                status = "degraded"
                reasons.append(f"error rate {rate:.3f} > {t.degraded_error_rate:g}")
            if t.degraded_p99 > 0 and p99 is not None and p99 > t.degraded_p99 and status == "healthy":
                status = "degraded"
                reasons.append(f"p99 latency {p99 * 1000:.1f} ms > {t.degraded_p99 * 1000:g} ms")
        return {
            "name": model,
            "version": version or "",
            "status": status,
            "reasons": reasons,
            "window_seconds": t.window,
            "requests": len(window),
            "errors": errors,
            "error_rate": rate,
            "latency_ms": {"p50": _ms(p50), "p99": _ms(p99)},
        }


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, int(round(q * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)

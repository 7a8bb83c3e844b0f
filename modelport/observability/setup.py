"""Builds the observability pieces from the server settings; the composition root holds one."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter

from .context import mark_stage
from .edge import RequestEdge
from .stats import HealthThresholds, ModelRecorder, Statistics

Observe = Callable[[str, float], None]


class Observability:
    def __init__(self, settings: Any, metrics: Any = None, tracer_provider: Any = None):
        s = settings
        registry = metrics.registry if metrics is not None else CollectorRegistry()
        self.registry = registry
        self.stats: Statistics | None = None
        if s.enable_statistics:
            self.stats = Statistics(registry, HealthThresholds(
                window=s.health_window,
                degraded_error_rate=s.health_degraded_error_rate,
                failed_error_rate=s.health_failed_error_rate,
                degraded_p99=s.health_degraded_p99_ms / 1000.0,
                min_requests=s.health_min_requests,
            ))
        self.tracing: Any = None
        if s.enable_tracing or tracer_provider is not None:
            from .tracing import Tracing  # the extra is imported only here

            self.tracing = Tracing(tracer_provider)
        self.edge = RequestEdge(s.access_log, s.access_log_sample, self.tracing)
        self.payload_events = Counter(
            "modelport_payload_log_events", "Payload log events by outcome (sent, dropped, failed)",
            ["model", "outcome"], registry=registry,
        )
        self._payload_loggers: list = []
        self.multiprocess_dir: str | None = None

    def model_observers(
        self, model: str, version: str | None, metrics: Any = None, latency_logging: bool = False
    ) -> tuple[ModelRecorder | None, Observe | None, Callable | None]:
        """The model's statistics recorder, and its stage and batch observers: the metrics' and the
        statistics' in one tally per stage (metrics.timing_tally), KServe's latency log line
        (``latency_logging``) and, while tracing, the trace's stage marks."""
        recorder = self.stats.recorder(model, version) if self.stats is not None else None
        observe: Observe | None = None
        if metrics is not None:
            observe = metrics.stage_observer(model, recorder)
        elif recorder is not None:
            observe = recorder.stage
        if latency_logging:
            observe = _latency_logger(model, observe)
        if self.tracing is not None:
            observe = _with_marks(observe)
        batch = metrics.batch_observer(model) if metrics is not None else None
        if recorder is not None:
            base_batch = batch or (lambda size, waits: None)

            def batch(size: int, waits: list) -> None:
                base_batch(size, waits)
                recorder.queued(waits)

        return recorder, observe, batch

    def cache_observer(self, model: str, version: str | None, hit: bool, seconds: float) -> None:
        """A response cache's lookups into Triton's cache_hit / cache_miss statistics."""
        self.stats.recorder(model, version).cache(hit, seconds)

    def payload_logger(self, model: str, version: str | None, config: dict | None) -> Any:
        if not config:
            return None
        from .payload import PayloadLogger

        logger = PayloadLogger(model, version, config, self.payload_events)
        self._payload_loggers.append(logger)
        return logger

    def use_multiprocess(self, path: str, metrics: Any) -> None:
        """In a front-end worker: read metrics and statistics from every worker's files under ``path``."""
        from . import multiprocess

        self.multiprocess_dir = path
        if metrics is not None:
            metrics.render = lambda: multiprocess.render(path, metrics)
        if self.stats is not None:
            self.stats.sample_source = lambda: multiprocess.samples(path)

    async def close(self) -> None:
        for logger in self._payload_loggers:
            await logger.close()
        self._payload_loggers.clear()
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.shutdown)  # it may wait on the collector; not on the loop


def _latency_logger(model: str, observe: Observe | None) -> Observe:
    """KServe's --enable_latency_logging: a log line per hook call with its latency in ms."""
    log = logging.getLogger("modelport.trace")

    def observe_and_log(stage: str, seconds: float) -> None:
        if observe is not None:
            observe(stage, seconds)
        log.info("model: %s, %s_ms: %.3f", model, stage, seconds * 1000)

    return observe_and_log


def _with_marks(observe: Observe | None) -> Observe:
    """The observer, then the stage's mark in the current request's trace."""
    if observe is None:
        return mark_stage

    def observe_and_mark(stage: str, seconds: float) -> None:
        observe(stage, seconds)
        mark_stage(stage, seconds)

    return observe_and_mark

"""Builds the observability pieces from the server settings; the composition root holds one."""

from __future__ import annotations

import asyncio
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
        self, model: str, version: str | None, observe: Observe | None, observe_batch: Callable | None
    ) -> tuple[ModelRecorder | None, Observe | None, Callable | None]:
        """The model's statistics recorder, and the stage and batch observers with statistics (and
        trace marks, while tracing) added to the metrics ones."""
        recorder = self.stats.recorder(model, version) if self.stats is not None else None
        if recorder is None and self.tracing is None:
            return None, observe, observe_batch
        base = observe or (lambda stage, seconds: None)
        stage = recorder.stage if recorder is not None else (lambda stage, seconds: None)
        if self.tracing is None:

            def observe_all(name: str, seconds: float) -> None:
                base(name, seconds)
                stage(name, seconds)
        else:

            def observe_all(name: str, seconds: float) -> None:
                base(name, seconds)
                stage(name, seconds)
                mark_stage(name, seconds)

        batch = observe_batch
        if recorder is not None:
            base_batch = observe_batch or (lambda size, waits: None)

            def batch(size: int, waits: list) -> None:
                base_batch(size, waits)
                recorder.queued(waits)

        return recorder, observe_all, batch

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

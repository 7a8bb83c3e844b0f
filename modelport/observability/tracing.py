"""OpenTelemetry tracing (extra ``tracing``), imported only when ``enable_tracing`` is on.

Each request gets a SERVER span, parented by the caller's W3C ``traceparent``; its stages become child
spans built when the request ends, from the times the data plane and runner note anyway (decode, queue,
preprocess, predict, postprocess, encode), so no span object exists while a hook runs. The response
carries the request span's ``traceparent``, and so do a transformer's calls to its predictor.
The exporter is OTLP/HTTP, configured by the standard ``OTEL_*`` environment variables.
"""

from __future__ import annotations

import threading
import time
from typing import Any

try:
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError("Tracing needs the 'tracing' extra: pip install 'modelport[tracing]'") from exc

from .context import RequestInfo


def default_provider() -> tuple[Any, Any]:
    """A tracer provider with a batching OTLP/HTTP exporter (endpoint, headers, service name from OTEL_*), and the exporter."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "modelport"}).merge(Resource.create()))
    exporter = OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider, exporter


class Tracing:
    def __init__(self, provider: Any = None):
        self._owned = provider is None  # ours to shut down (a provider passed in belongs to the caller)
        self._exporter = None
        if provider is None:
            provider, self._exporter = default_provider()
        self.provider = provider
        self.tracer = self.provider.get_tracer("modelport")
        self.propagator = TraceContextTextMapPropagator()

    def start(self, info: RequestInfo, carrier: dict, name: str, attributes: dict) -> None:
        parent = self.propagator.extract(carrier) if carrier else None
        info.span = span = self.tracer.start_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=attributes,
            start_time=time.time_ns() - int((time.perf_counter() - info.start) * 1e9),
        )
        info.stages = []
        ctx = span.get_span_context()
        info.traceparent = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"

    def end(self, info: RequestInfo, end: float, attributes: dict, error: bool, name: str | None = None) -> None:
        """``name``: the span's final name (the matched door's route), when known only now."""
        span = info.span
        if span is None:
            return
        if name is not None:
            span.update_name(name)
        offset = time.time_ns() - int(end * 1e9)  # perf_counter seconds -> epoch ns

        def ns(t: float) -> int:
            return offset + int(t * 1e9)

        parent = trace.set_span_in_context(span)

        def child(name: str, a: float, b: float) -> None:
            s = self.tracer.start_span(name, context=parent, start_time=ns(a))
            s.end(end_time=ns(max(a, b)))

        stages = sorted(((stop - seconds, stop, stage) for stage, stop, seconds in info.stages or ()))
        if info.entered:
            child("decode", info.start, info.entered)
            child("queue", info.entered, stages[0][0] if stages else (info.left or end))
        for a, b, stage in stages:
            child(stage, a, b)
        if info.left:
            child("encode", info.left, end)
        span.set_attribute("modelport.request_id", info.request_id)
        if info.model is not None:
            span.set_attribute("modelport.model", info.model)
            if info.version is not None:
                span.set_attribute("modelport.version", info.version)
        span.set_attributes(attributes)
        if error:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=ns(end))

    def shutdown(self, grace: float = 2.0) -> None:
        """Export what is buffered, for up to ``grace`` seconds; stop the exporter if it is ours.

        The SDK's flush waits out an unreachable collector's retries (seconds, whatever timeout it
        is given), so our exporter is shut down after ``grace``, which ends them."""
        if not self._owned:
            self.provider.force_flush(int(grace * 1000))
            return
        timer = threading.Timer(grace, self._exporter.shutdown)
        timer.daemon = True
        timer.start()
        try:
            self.provider.shutdown()
        finally:
            timer.cancel()

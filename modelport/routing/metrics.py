"""Prometheus metrics of the routing concern, in the server's one registry: per-version outcomes and
latency (to judge a canary), shadow traffic, and graph steps."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

from ..observability.metrics import _BUCKETS


class RoutingMetrics:
    def __init__(self, registry: Any):
        r = registry
        self.version_requests = Counter(
            "modelport_version_requests", "Requests served per model version, by outcome",
            ["model", "version", "outcome"], registry=r,
        )
        self.version_latency = Histogram(
            "modelport_version_request_duration_seconds", "Time to serve a request, per model version",
            ["model", "version"], buckets=_BUCKETS, registry=r,
        )
        self.mirrored = Counter("modelport_shadow_requests", "Requests mirrored to a shadow version", ["model", "version"], registry=r)
        self.disagreements = Counter(
            "modelport_shadow_disagreements", "Shadow answers that differ from the primary's (or failed)",
            ["model", "version"], registry=r,
        )
        self.shadow_dropped = Counter(
            "modelport_shadow_dropped", "Mirrors skipped because too many shadows were running", ["model", "version"], registry=r
        )
        self.shadow_latency = Histogram(
            "modelport_shadow_duration_seconds", "Time the shadow version took", ["model", "version"], buckets=_BUCKETS, registry=r
        )
        self.rollbacks = Counter("modelport_auto_rollbacks", "Automatic rollbacks of a canary", ["model", "version"], registry=r)
        self.graph_steps = Histogram(
            "modelport_graph_step_duration_seconds", "Time of one inference graph step, by outcome",
            ["graph", "step", "outcome"], buckets=_BUCKETS, registry=r,
        )

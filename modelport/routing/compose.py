"""How routing is composed into a server (called by the composition root, ``modelport/serving/server.py``):
the router in the data plane, warmup and graph binding before a model turns ready, policies from
model-settings, and the repository poller."""

from __future__ import annotations

import logging
from typing import Any

from .metrics import RoutingMetrics
from .router import Router
from .warmup import run_warmup

logger = logging.getLogger("modelport")


def attach(server: Any, settings: Any) -> None:
    metrics = RoutingMetrics(server.metrics.registry) if server.metrics is not None else None
    server.router = Router(server.repository, metrics, settings.max_shadow_requests)
    server.dataplane.router = server.router
    server._poller = getattr(server, "_poller", None)
    dataplane = server.dataplane

    async def before_ready(entry: Any) -> None:
        bind = getattr(entry.model, "bind_dataplane", None)
        if bind is not None:  # a graph calls its local steps through the data plane
            entry.model.check_references(server.repository)  # a graph calling itself back fails its load
            bind(dataplane, metrics)
        await run_warmup(entry)

    server.repository.before_ready = before_ready


def apply_policies(server: Any, models: list) -> None:
    """Traffic policies declared in model-settings, before any request arrives."""
    for model, settings in models:
        traffic = getattr(settings, "traffic", None) if settings is not None else getattr(model, "traffic", None)
        if traffic:
            server.router.set_policy(model.name, traffic, check=False)


def start_polling(server: Any) -> None:
    s = server.settings
    if s.model_control_mode == "poll" and server.repository.models_dir and server._poller is None:
        from .poll import RepositoryPoller

        server._poller = RepositoryPoller(server.repository, server.router, s.poll_interval)
        server._poller.start()


async def stop(server: Any) -> None:
    if server._poller is not None:
        await server._poller.stop()
        server._poller = None
    await server.router.drain_shadows()

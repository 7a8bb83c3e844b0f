"""MLServer's custom metrics (``mlserver.register`` / ``mlserver.log``) on the server's Prometheus
registry, labelled with the model's name and version as MLServer labels them.

The MLServer adapter sets the model context (name, version, the server's registry) around a
runtime's ``load`` and ``predict``; ``log`` outside a model's context raises, as in MLServer.
"""

from __future__ import annotations

import contextlib
import contextvars
import weakref
from typing import Any, Iterator

from prometheus_client import CollectorRegistry, Histogram

from .errors import MLServerError

MODEL_NAME_LABEL = "model_name"
MODEL_VERSION_LABEL = "model_version"

_context: contextvars.ContextVar[tuple[str, str, Any] | None] = contextvars.ContextVar("mlserver_model", default=None)
# Registries used without a server (a runtime loaded by hand): one for the process.
_fallback = CollectorRegistry()
_metrics: "weakref.WeakKeyDictionary[CollectorRegistry, dict[str, Histogram]]" = weakref.WeakKeyDictionary()


class InvalidModelContext(MLServerError):
    def __init__(self) -> None:
        super().__init__("Custom metrics can only be logged while a model serves a request (or loads)")


@contextlib.contextmanager
def model_context(name: str, version: str | None, registry: CollectorRegistry | None) -> Iterator[None]:
    token = _context.set((name, version or "", registry))
    try:
        yield
    finally:
        _context.reset(token)


def _registry() -> CollectorRegistry:
    ctx = _context.get()
    return ctx[2] if ctx is not None and ctx[2] is not None else _fallback


def register(name: str, description: str) -> Histogram:
    """A histogram named ``name`` (the existing one when already registered)."""
    registry = _registry()
    known = _metrics.setdefault(registry, {})
    if name not in known:
        known[name] = Histogram(name, description, labelnames=[MODEL_NAME_LABEL, MODEL_VERSION_LABEL], registry=registry)
    return known[name]


def log(**metrics: float) -> None:
    """Observe each ``name=value`` for the current model, registering unknown names."""
    ctx = _context.get()
    if ctx is None:
        raise InvalidModelContext()
    name, version, _ = ctx
    for metric, value in metrics.items():
        register(metric, f"Custom metric {metric}").labels(**{MODEL_NAME_LABEL: name, MODEL_VERSION_LABEL: version}).observe(value)


__all__ = ["InvalidModelContext", "log", "model_context", "register"]

"""Routing: traffic policies on a model name (split, sticky, shadow, promote/rollback, automatic
rollback), zero-error swaps (repository poll mode, warmup) and inference graphs.

A policy and a graph are models to the data plane: a name the data plane resolves, so REST and gRPC
serve them without a branch of their own.
"""

from .policy import TrafficPolicy
from .router import VERSION_HEADER, Router

__all__ = ["Router", "TrafficPolicy", "VERSION_HEADER"]

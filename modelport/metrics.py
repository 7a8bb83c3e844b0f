"""``kserve.metrics`` at ``modelport.metrics``: an import path only; the code lives in
:mod:`modelport.observability.metrics` (see docs/ARCHITECTURE.md)."""

from .observability import metrics as _impl
from .observability.metrics import CONTENT_TYPE, Metrics, histogram_observer, counter_adder

__all__ = ["CONTENT_TYPE", "Metrics", "histogram_observer", "counter_adder"]


def __getattr__(name: str):  # any other name the module had, private ones included
    return getattr(_impl, name)

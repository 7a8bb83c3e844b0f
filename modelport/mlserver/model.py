"""``mlserver.model`` at ``modelport.mlserver.model``: an import path only; the code lives in
:mod:`modelport.compat.mlserver.model` (see docs/ARCHITECTURE.md)."""

from ..compat.mlserver import model as _impl
from ..compat.mlserver.model import MLModel

__all__ = ["MLModel"]


def __getattr__(name: str):  # any other name the module had, private ones included
    return getattr(_impl, name)

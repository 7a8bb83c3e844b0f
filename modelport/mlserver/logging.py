"""``mlserver.logging`` at ``modelport.mlserver.logging``: an import path only; the code lives in
:mod:`modelport.compat.mlserver.logging` (see docs/ARCHITECTURE.md)."""

from ..compat.mlserver import logging as _impl
from ..compat.mlserver.logging import *  # noqa: F401,F403 - the names in its __all__
from ..compat.mlserver.logging import __all__  # noqa: F401


def __getattr__(name: str):  # any other name the module had, private ones included
    return getattr(_impl, name)

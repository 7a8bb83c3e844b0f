"""``mlserver.errors`` at ``modelport.mlserver.errors``: an import path only; the code lives in
:mod:`modelport.compat.mlserver.errors` (see docs/ARCHITECTURE.md)."""

from ..compat.mlserver import errors as _impl
from ..compat.mlserver.errors import *  # noqa: F401,F403 - the names in its __all__
from ..compat.mlserver.errors import __all__  # noqa: F401


def __getattr__(name: str):  # any other name the module had, private ones included
    return getattr(_impl, name)

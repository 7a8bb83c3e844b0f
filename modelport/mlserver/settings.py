"""``mlserver.settings`` at ``modelport.mlserver.settings``: an import path only; the code lives in
:mod:`modelport.compat.mlserver.settings` (see docs/ARCHITECTURE.md)."""

from ..compat.mlserver import settings as _impl
from ..compat.mlserver.settings import *  # noqa: F401,F403 - the names in its __all__
from ..compat.mlserver.settings import __all__  # noqa: F401


def __getattr__(name: str):  # any other name the module had, private ones included
    return getattr(_impl, name)

"""``mlserver.codecs.lists`` at ``modelport.mlserver.codecs.lists``: an import path only; the code lives in
:mod:`modelport.compat.mlserver.codecs_lists` (see docs/ARCHITECTURE.md)."""

from ...compat.mlserver import codecs_lists as _impl
from ...compat.mlserver.codecs_lists import *  # noqa: F401,F403 - the names in its __all__
from ...compat.mlserver.codecs_lists import __all__  # noqa: F401


def __getattr__(name: str):  # any other name the module had, private ones included
    return getattr(_impl, name)

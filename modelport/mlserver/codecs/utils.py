"""``mlserver.codecs.utils`` at ``modelport.mlserver.codecs.utils``: an import path only; the code lives in
:mod:`modelport.compat.mlserver.codecs_utils` (see docs/ARCHITECTURE.md)."""

from ...compat.mlserver import codecs_utils as _impl
from ...compat.mlserver.codecs_utils import *  # noqa: F401,F403 - the names in its __all__
from ...compat.mlserver.codecs_utils import __all__  # noqa: F401


def __getattr__(name: str):  # any other name the module had, private ones included
    return getattr(_impl, name)

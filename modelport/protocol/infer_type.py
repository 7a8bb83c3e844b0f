"""``kserve.protocol.infer_type`` at ``modelport.protocol.infer_type``: an import path only; the code lives in
:mod:`modelport.compat.kserve.infer_type` (see docs/ARCHITECTURE.md)."""

from ..compat.kserve import infer_type as _impl
from ..compat.kserve.infer_type import *  # noqa: F401,F403 - the names in its __all__
from ..compat.kserve.infer_type import __all__  # noqa: F401


def __getattr__(name: str):  # any other name the module had, private ones included
    return getattr(_impl, name)

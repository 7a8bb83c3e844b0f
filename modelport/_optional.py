"""Lazy imports of optional libraries, with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType


def import_optional(module: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{module} is needed for this feature: pip install 'modelport[{extra}]'"
        ) from exc

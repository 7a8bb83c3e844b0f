"""The data plane: every protocol operation, once, for every door (plane)."""

from .plane import DataPlane

__all__ = ["DataPlane"]

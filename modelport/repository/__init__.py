"""The model repository: live entries, their states and versions (entries), the folder
scanner (scan) and residency, more models than memory (residency)."""

from .entries import ModelState, ModelEntry, ModelRepository

__all__ = ["ModelState", "ModelEntry", "ModelRepository"]

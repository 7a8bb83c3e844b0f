"""KServe's ``kserve.model_repository``: a repository that a script fills from its own code.

KServe's built-in servers subclass it (``SKLearnModelRepository``): ``__init__`` calls
:meth:`load_models`, which calls the subclass's ``load_model(name)`` for each sub-folder, and that
builds a model, loads it and registers it with ``update``. Such a repository never reads
model-settings.json files: its folder belongs to the subclass. A subclass's ``load_model(name)``
keeps modelport's own ``load_model(model, settings)`` working (the server calls that one).
"""

from __future__ import annotations

import os
from typing import Any

from ...model import Model
from ...repository.entries import ModelRepository as _Repository

MODEL_MOUNT_DIRS = "/mnt/models"


class ModelRepository(_Repository):
    def __init__(self, models_dir: str = MODEL_MOUNT_DIRS, **kwargs: Any):
        super().__init__(models_dir, **kwargs)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("load_model")
        if own is None:
            return

        def load_model(self, model: Any, *args: Any, **kw: Any) -> Any:
            if isinstance(model, str):  # KServe's load_model(name), the subclass's
                return own(self, model, *args, **kw)
            return _Repository.load_model(self, model, *args, **kw)

        load_model.__doc__ = own.__doc__
        cls.load_model = load_model

    @property
    def models(self) -> dict[str, Model]:
        return self.get_models()

    def load_models(self) -> None:
        """``load_model(name)`` for each sub-folder of ``models_dir``, as KServe's does."""
        for name in sorted(os.listdir(self.models_dir)):
            if os.path.isdir(os.path.join(self.models_dir, name)):
                self.load_model(name)

    def set_models_dir(self, models_dir: str) -> None:
        self.models_dir = models_dir

    def update(self, model: Model, name: str | None = None, settings: Any = None) -> Any:
        """Register ``model``; KServe's ``name`` serves it under another name as well."""
        if name and name != model.name:
            raise ValueError(f"serving model {model.name!r} under a second name {name!r} is not supported")
        return super().update(model, settings)

    # The folder is the subclass's: no model-settings.json discovery on it.
    def build_folder(self) -> list:
        return []

    def _scan_folder(self, quiet: bool = True) -> tuple[list, dict[str, str]]:
        return [], {}


__all__ = ["MODEL_MOUNT_DIRS", "ModelRepository"]

"""Built-in model classes per framework. Each framework is an optional extra, imported lazily."""

from __future__ import annotations

from ..settings import ModelSettings, SettingsError


def find_runtime(settings: ModelSettings) -> str:
    """The implementation ("module.Class") for a model whose settings name none."""
    raise SettingsError(
        f"Model {settings.name}: model-settings.json has no \"implementation\"; set it to \"module.Class\""
    )

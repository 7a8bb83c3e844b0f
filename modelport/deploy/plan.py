"""What a model folder needs to run elsewhere: its models, their runtimes and extras, its requirements.

A folder is either a model folder (``model-settings.json`` files, as ``modelport serve`` reads it), a
single model file, or a transformer pair: a folder holding ``transformer/`` and ``predictor/``, each a
model folder (the layout of ``examples/transformer``), deployed as two containers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..runtimes import ALIASES, RUNTIMES, resolve_implementation, settings_for_file
from ..settings import ServerSettings, SettingsError, find_model_settings, load_model_settings, load_server_settings

# Built-in runtime -> the format name KServe's ServingRuntimes use in supportedModelFormats.
KSERVE_FORMATS = {
    "sklearn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "onnx": "onnx",
    "torch": "pytorch",
    "huggingface": "huggingface",
}
_RUNTIME_OF_CLASS = {path: name for name, path in RUNTIMES.items()}


@dataclass
class DeployPlan:
    folder: Path
    name: str  # a DNS-1123 name for the resources, from the folder's name unless given
    models: dict[str, str] = field(default_factory=dict)  # model name -> runtime ("custom" for user classes)
    settings: ServerSettings = field(default_factory=ServerSettings)
    requirements: Path | None = None  # requirements.txt beside the models, installed into the image
    transformer: "DeployPlan | None" = None  # set on the predictor's plan of a transformer pair
    single_file: bool = False

    @property
    def runtimes(self) -> list[str]:
        """The built-in runtimes the models use, which are also modelport's extras to install."""
        found = set(self.models.values())
        if self.transformer is not None:
            found |= set(self.transformer.models.values())
        return sorted(found - {"custom"})

    @property
    def model_formats(self) -> list[str]:
        return [KSERVE_FORMATS[r] for r in self.runtimes]


def dns_name(text: str) -> str:
    """A Kubernetes resource name (RFC 1123 label) made from ``text``."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")
    if not name:
        raise SettingsError(f"Cannot make a Kubernetes name from {text!r}; give one with --name")
    return name


def plan_folder(path: str | Path, name: str | None = None) -> DeployPlan:
    """The plan for a model folder, a single model file, or a transformer pair (transformer/ + predictor/)."""
    path = Path(path).resolve()
    if not path.exists():
        raise SettingsError(f"{path} does not exist; give a model folder or a model file")
    resource = dns_name(name or path.stem)
    if path.is_file():
        spec = settings_for_file(path)
        return DeployPlan(path, resource, {spec.name: _runtime(spec)}, ServerSettings(), single_file=True)
    pair = [path / "predictor", path / "transformer"]
    if all(p.is_dir() for p in pair):
        predictor = _plan_models(pair[0], resource)
        predictor.transformer = _plan_models(pair[1], f"{resource}-transformer")
        predictor.folder = path
        predictor.requirements = _requirements(path) or predictor.requirements
        return predictor
    return _plan_models(path, resource)


def _plan_models(folder: Path, resource: str) -> DeployPlan:
    settings_file = folder / "settings.json"
    server = load_server_settings(settings_file if settings_file.is_file() else None, env={})
    models: dict[str, str] = {}
    for spec_path in find_model_settings(folder):
        spec = load_model_settings(spec_path)
        models[spec.name] = _runtime(spec)
    if not models:
        raise SettingsError(f"{folder} holds no model-settings.json; nothing to deploy")
    return DeployPlan(folder, resource, models, server, _requirements(folder))


def _runtime(spec) -> str:
    """The built-in runtime serving ``spec``; for a user's class, the framework its ``platform`` names, if any."""
    runtime = _RUNTIME_OF_CLASS.get(resolve_implementation(spec))
    return runtime or ALIASES.get((spec.platform or "").lower(), "custom")


def _requirements(folder: Path) -> Path | None:
    candidate = folder / "requirements.txt"
    return candidate if candidate.is_file() else None

"""What a model folder serves: its model-settings.json files, and model files without one.

A sub-folder with no model-settings.json anywhere inside is read as Triton reads a repository whose
configs it completes: the sub-folder's name is the model's name, the runtime is detected from its files
(``iris/model.onnx``), and numbered sub-folders are versions (``iris/1/model.onnx``). A folder that
holds only a model file is served under the folder's own name. Whatever yields no model is reported
with the reason, so the server can log it and say it in its readiness answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .settings import ModelParameters, ModelSettings, SettingsError, find_model_settings, load_model_settings

_SKIP = ("__pycache__",)


@dataclass
class FolderContents:
    specs: list[ModelSettings] = field(default_factory=list)
    # One line per folder (or file) that looks like a model but yields none, saying why.
    problems: list[str] = field(default_factory=list)
    # Model (folder) name -> why its model-settings.json cannot be used.
    broken: dict[str, str] = field(default_factory=dict)


def discover(models_dir: str, strict: bool = False) -> FolderContents:
    from .runtimes import RUNTIMES, detect_runtime  # imports no framework

    root = Path(models_dir)
    found = FolderContents()
    settings_files = find_model_settings(root)
    for path in settings_files:
        try:
            found.specs.append(load_model_settings(path, strict=strict))
        except SettingsError as exc:
            found.broken.setdefault(path.parent.name, str(exc))
    # Every folder holding a settings file, in itself or deeper down: one set lookup per sub-folder
    # (comparing each sub-folder with every settings file took minutes for 2,000 models).
    holders = {folder for p in settings_files for folder in (p.parent, *p.parent.parents)}

    def holds_settings(folder: Path) -> bool:
        return folder in holders

    def bare(name: str, folder: Path, version: str | None) -> ModelSettings | str:
        try:
            runtime = detect_runtime(folder)
        except SettingsError as exc:
            return str(exc)
        # "." is the settings folder itself (a relative root like ./iris must not resolve to iris/iris).
        params = ModelParameters(uri=".", version=version)
        return ModelSettings(name=name, implementation=RUNTIMES[runtime], parameters=params, folder=str(folder))

    subfolders = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith((".", "_"))]
    loose = [p for p in subfolders if not holds_settings(p)]
    if not settings_files and (not subfolders or (root / "MLmodel").is_file()):
        # A folder holding just a model file (KServe's --model_dir layout), or an MLflow model folder
        # (its code/ or artifacts/ subfolders are the model's own); an empty one holds no model.
        files = [f for f in root.iterdir() if f.is_file() and not f.name.startswith(".") and f.name != "settings.json"]
        if not files:
            return found
        spec = bare(root.name, root, None)
        if isinstance(spec, ModelSettings):
            found.specs.append(spec)
        else:
            found.problems.append(f"{root}: {spec}")
        return found
    for folder in loose:
        versions = [v for v in sorted(folder.iterdir()) if v.is_dir() and v.name.isdigit()]
        if versions:
            for v in versions:
                spec = bare(folder.name, v, v.name)
                if isinstance(spec, ModelSettings):
                    found.specs.append(spec)
                else:
                    found.problems.append(f"{v}: {spec}")
            continue
        spec = bare(folder.name, folder, None)
        if isinstance(spec, ModelSettings):
            found.specs.append(spec)
        else:
            found.problems.append(f"{folder}: {spec}")
    return found

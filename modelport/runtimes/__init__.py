"""Built-in model classes per framework, and how a model's settings or files pick one.

Each framework is an optional extra, imported only when a model that needs it loads: importing this
package imports no framework. A model names its runtime with ``implementation`` in
model-settings.json, as

* an alias: ``sklearn``, ``xgboost``, ``lightgbm``, ``onnx``, ``torch``, ``huggingface``, ``mlflow`` (and a few
  spellings of each, see ``ALIASES``);
* an MLServer or KServe class path (``mlserver_sklearn.SKLearnModel``, ``xgbserver.XGBoostModel``,
  ...), mapped to the built-in runtime so that an MLServer model folder moves over unchanged;
* any other ``module.Class`` (a user's own :class:`~modelport.Model` subclass), used as it is;
* nothing: the runtime is chosen from the model's files (``parameters.uri``, else the folder that
  holds model-settings.json) by well-known names and extensions, see :func:`detect_runtime`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..settings import ModelParameters, ModelSettings, SettingsError

__all__ = [
    "ALIASES",
    "RUNTIMES",
    "detect_runtime",
    "find_model_file",
    "find_runtime",
    "resolve_implementation",
    "settings_for_file",
]

# Built-in runtime name -> "module.Class".
RUNTIMES: dict[str, str] = {
    "sklearn": "modelport.runtimes.sklearn.SKLearnModel",
    "xgboost": "modelport.runtimes.xgboost.XGBoostModel",
    "lightgbm": "modelport.runtimes.lightgbm.LightGBMModel",
    "onnx": "modelport.runtimes.onnx.ONNXModel",
    "torch": "modelport.runtimes.torch.TorchModel",
    "huggingface": "modelport.runtimes.huggingface.HuggingFaceModel",
    "mlflow": "modelport.runtimes.mlflow.MLflowModel",
}

# Other names for the built-in runtimes (compared lower-cased): short names, and the class paths of
# MLServer's and KServe's runtimes, so their model-settings.json files work here unchanged.
ALIASES: dict[str, str] = {
    **{name: name for name in RUNTIMES},
    **{path.lower(): name for name, path in RUNTIMES.items()},
    "scikit-learn": "sklearn",
    "scikit_learn": "sklearn",
    "xgb": "xgboost",
    "lgb": "lightgbm",
    "lgbm": "lightgbm",
    "onnxruntime": "onnx",
    "pytorch": "torch",
    "torchscript": "torch",
    "hf": "huggingface",
    "transformers": "huggingface",
    "mlserver_sklearn.sklearnmodel": "sklearn",
    "mlserver_xgboost.xgboostmodel": "xgboost",
    "mlserver_lightgbm.lightgbmmodel": "lightgbm",
    "mlserver_onnx.onnxmodel": "onnx",
    "mlserver_huggingface.huggingfaceruntime": "huggingface",
    "mlserver_mlflow.mlflowruntime": "mlflow",
    "pyfunc": "mlflow",
    "sklearnserver.sklearnmodel": "sklearn",
    "xgbserver.xgboostmodel": "xgboost",
    "lgbserver.lightgbmmodel": "lightgbm",
}

# Files each runtime serves, for choosing a runtime from a folder. Well-known names win when a
# folder holds several candidates for one runtime.
_WELL_KNOWN: dict[str, tuple[str, ...]] = {
    "sklearn": ("model.joblib", "model.pkl", "model.pickle"),
    "xgboost": ("model.json", "model.ubj", "model.bst"),
    "lightgbm": ("model.txt",),
    "onnx": ("model.onnx",),
    "torch": ("model.pt2", "model.pt", "model.pth"),
}
_SUFFIXES: dict[str, str] = {
    ".joblib": "sklearn",
    ".pkl": "sklearn",
    ".pickle": "sklearn",
    ".ubj": "xgboost",
    ".bst": "xgboost",
    ".onnx": "onnx",
    ".pt": "torch",
    ".pth": "torch",
    ".pt2": "torch",
    ".torchscript": "torch",
}
# Files that never are a model by themselves.
_NOT_MODELS = {"model-settings.json", "settings.json"}
# An MLflow model folder: this file, whatever else the folder holds (its model.pkl is MLflow's to load).
_MLMODEL = "MLmodel"
# A Hugging Face folder: config.json and one of these tokenizer files.
_HF_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "spiece.model", "merges.txt")
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")

SUPPORTED_FILES = (
    "model.joblib / *.pkl / *.pickle (sklearn), *.json with an XGBoost signature / *.ubj / *.bst (xgboost), "
    "*.txt LightGBM model (lightgbm), *.onnx (onnx), *.pt / *.pth TorchScript and *.pt2 torch.export "
    "(torch), a folder with config.json and tokenizer files (huggingface), a folder with an MLmodel file (mlflow)"
)


# -- implementation names ----------------------------------------------------------------------
def resolve_implementation(settings: ModelSettings) -> str:
    """The ``module.Class`` that serves a model: an alias resolved, a dotted path unchanged, or detected.

    Raises :class:`SettingsError` for an unknown alias, and when no runtime can be detected.
    """
    implementation = settings.implementation
    if implementation is None or not implementation.strip():
        return find_runtime(settings)
    implementation = implementation.strip()
    runtime = ALIASES.get(implementation.lower())
    if runtime is not None:
        return RUNTIMES[runtime]
    if "." in implementation:
        return implementation
    raise SettingsError(
        f"Model {settings.name}: unknown implementation {implementation!r}; use \"module.Class\" or one of the "
        f"built-in runtimes: {', '.join(RUNTIMES)}"
    )


def find_runtime(settings: ModelSettings) -> str:
    """The built-in runtime (``module.Class``) for a model whose settings name none, from its files."""
    return RUNTIMES[_detect_for_settings(settings)]


def _detect_for_settings(settings: ModelSettings) -> str:
    uri = settings.uri or settings.folder
    if not uri:
        raise SettingsError(
            f"Model {settings.name}: no \"implementation\" and no parameters.uri to choose a runtime from; "
            f"set \"implementation\" to \"module.Class\" or one of: {', '.join(RUNTIMES)}"
        )
    if "://" in uri and not uri.lower().startswith("file:"):
        # A remote file named like a model needs no download to be classified.
        name = uri.rstrip("/").rsplit("/", 1)[-1]
        runtime = _SUFFIXES.get(os.path.splitext(name)[1].lower())
        if runtime is not None:
            return runtime
    from ..storage import fetch  # downloads once; the runtime's load() finds it in the cache

    path = fetch(uri, version=settings.version)
    try:
        return detect_runtime(path)
    except SettingsError as exc:
        raise SettingsError(f"Model {settings.name}: {exc}") from None


# -- detection from files ----------------------------------------------------------------------
def _head(path: Path, size: int = 64) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError:
        return b""


def _classify(path: Path) -> str | None:
    """The runtime a single file belongs to, by name, extension and (for .json/.txt) signature."""
    name = path.name.lower()
    if name in _NOT_MODELS or name.startswith("."):
        return None
    suffix = path.suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    if suffix == ".json":
        # XGBoost's JSON format: {"learner": {...}, "version": [...]}
        return "xgboost" if re.match(rb'\s*\{\s*"learner"\s*:', _head(path)) else None
    if suffix in (".txt", ".model"):
        # LightGBM's text format begins with a line "tree", then "version=v4".
        return "lightgbm" if re.match(rb"tree\r?\nversion=", _head(path)) else None
    return None


def _is_huggingface(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any((folder / f).is_file() for f in _HF_TOKENIZER_FILES)


def _scan(folder: Path) -> dict[str, list[Path]]:
    """Runtime -> candidate files in ``folder`` (top level only)."""
    if (folder / _MLMODEL).is_file():  # MLflow's folder, whatever model files it holds
        return {"mlflow": [folder]}
    found: dict[str, list[Path]] = {}
    if _is_huggingface(folder):
        found["huggingface"] = [folder]
    for path in sorted(folder.iterdir()):
        if path.is_file():
            runtime = _classify(path)
            if runtime is not None:
                found.setdefault(runtime, []).append(path)
    return found


def _model_folder(folder: Path) -> Path:
    """``folder``, or its only subfolder when it holds nothing else (an unpacked archive of a folder)."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".") and p.name not in _NOT_MODELS]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder


def _supported() -> str:
    return f"supported: {SUPPORTED_FILES}; or set \"implementation\" to one of {', '.join(RUNTIMES)} or \"module.Class\""


def detect_runtime(path: str | os.PathLike) -> str:
    """The built-in runtime name (``"sklearn"``, ``"onnx"``, ...) for a local model file or folder.

    Raises :class:`SettingsError` naming what was found when the files match no runtime or several.
    """
    path = Path(path)
    if not path.exists():
        raise SettingsError(f"{path} does not exist")
    if path.is_file():
        if path.name == _MLMODEL:
            return "mlflow"
        runtime = _classify(path)
        if runtime is None:
            raise SettingsError(f"cannot tell which runtime serves {path}; {_supported()}")
        return runtime
    folder = _model_folder(path)
    found = _scan(folder)
    if len(found) == 1:
        return next(iter(found))
    if not found:
        listing = sorted(p.name for p in folder.iterdir() if p.name not in _NOT_MODELS)
        shown = ", ".join(listing[:20]) + (", ..." if len(listing) > 20 else "") if listing else "no files"
        raise SettingsError(f"no model file found in {folder} (found {shown}); {_supported()}")
    what = "; ".join(
        f"{runtime}: {', '.join(p.name + ('/' if p.is_dir() else '') for p in paths)}" for runtime, paths in found.items()
    )
    raise SettingsError(
        f"{folder} holds models for several runtimes ({what}); set \"implementation\" to one of "
        f"{', '.join(found)}, or point parameters.uri at one file"
    )


def find_model_file(path: str | os.PathLike, runtime: str) -> Path:
    """The file ``runtime`` should load from a local file or folder (a folder for huggingface)."""
    path = Path(path)
    if runtime == "mlflow":  # the folder holding MLmodel (given, or the MLmodel file itself)
        return path.parent if path.is_file() else _model_folder(path) if path.is_dir() else path
    if path.is_file() or runtime == "huggingface":
        return path.parent if runtime == "huggingface" and path.is_file() else path
    if not path.is_dir():
        raise SettingsError(f"Model path {path} does not exist")
    folder = _model_folder(path)
    candidates = _scan(folder).get(runtime, [])
    if len(candidates) == 1:
        return candidates[0]
    for name in _WELL_KNOWN.get(runtime, ()):
        for candidate in candidates:
            if candidate.name == name:
                return candidate
    if not candidates:
        raise SettingsError(f"No {runtime} model file in {folder}; {_supported()}")
    names = ", ".join(c.name for c in candidates)
    raise SettingsError(
        f"Several {runtime} model files in {folder} ({names}); point parameters.uri at one of them"
    )


# -- serving one file --------------------------------------------------------------------------
def settings_for_file(path: str | os.PathLike, name: str | None = None) -> ModelSettings:
    """Model settings to serve one model file or folder (or URI) directly (``modelport serve model.onnx``).

    The name is the file's stem (``iris.onnx`` -> ``iris``; ``iris.tar.gz`` -> ``iris``) unless given;
    the runtime is detected now, so a file no runtime serves fails here with a clear message.
    """
    text = os.fspath(path)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", text) and not text.lower().startswith("file:"):
        uri, base, is_file = text, text.rstrip("/").rsplit("/", 1)[-1], "." in text.rstrip("/").rsplit("/", 1)[-1]
    else:
        p = Path(text).expanduser()
        if not p.exists():
            raise SettingsError(f"Model file {p} does not exist")
        p = p.resolve()
        uri, base, is_file = str(p), p.name, p.is_file()
    if name is None:
        name = base
        for suffix in _ARCHIVE_SUFFIXES:
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
                break
        else:
            name = os.path.splitext(base)[0] if is_file else base
    settings = ModelSettings(name=name, parameters=ModelParameters(uri=uri))
    settings.implementation = find_runtime(settings)
    return settings

"""Choosing a built-in runtime: by alias, by dotted path, by the model's files; and lazy imports.

Model files here are stand-ins with the right names and signatures; no framework is needed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from modelport.repository.entries import build_model
from modelport.runtimes import (
    RUNTIMES,
    detect_runtime,
    find_model_file,
    find_runtime,
    resolve_implementation,
    settings_for_file,
)
from modelport.settings import ModelParameters, ModelSettings, SettingsError, load_model_settings

FRAMEWORKS = ("sklearn", "joblib", "xgboost", "lightgbm", "onnxruntime", "onnx", "torch", "transformers", "pandas",
              "sentence_transformers")
XGB_JSON = '{"learner":{"attributes":{},"feature_names":[]},"version":[3,2,0]}'
LGB_TXT = "tree\nversion=v4\nnum_class=1\n"


def touch(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def settings(name="m", implementation=None, uri=None, folder=None, **extra):
    return ModelSettings(name=name, implementation=implementation, parameters=ModelParameters(uri=uri, extra=extra), folder=folder)


# -- aliases and dotted paths ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("alias", "runtime"),
    [
        ("sklearn", "sklearn"),
        ("SKLearn", "sklearn"),
        ("scikit-learn", "sklearn"),
        ("mlserver_sklearn.SKLearnModel", "sklearn"),
        ("sklearnserver.SKLearnModel", "sklearn"),
        ("xgboost", "xgboost"),
        ("mlserver_xgboost.XGBoostModel", "xgboost"),
        ("lightgbm", "lightgbm"),
        ("mlserver_lightgbm.LightGBMModel", "lightgbm"),
        ("onnx", "onnx"),
        ("onnxruntime", "onnx"),
        ("torch", "torch"),
        ("pytorch", "torch"),
        ("huggingface", "huggingface"),
        ("mlserver_huggingface.HuggingFaceRuntime", "huggingface"),
        ("modelport.runtimes.onnx.ONNXModel", "onnx"),
    ],
)
def test_aliases_resolve_to_built_in_runtimes(alias, runtime):
    assert resolve_implementation(settings(implementation=alias)) == RUNTIMES[runtime]


def test_dotted_paths_are_kept_and_unknown_aliases_refused():
    assert resolve_implementation(settings(implementation="my_models.Iris")) == "my_models.Iris"
    with pytest.raises(SettingsError) as info:
        resolve_implementation(settings(implementation="tensorflow"))
    message = str(info.value)
    assert "tensorflow" in message and "sklearn" in message and "module.Class" in message


def test_every_runtime_class_imports_without_its_framework():
    for path in RUNTIMES.values():
        module, _, cls = path.rpartition(".")
        code = (
            f"import sys, importlib; m = importlib.import_module({module!r}); getattr(m, {cls!r}); "
            f"print([f for f in {FRAMEWORKS!r} if f in sys.modules])"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "[]", (path, out.stdout, out.stderr)


def test_import_modelport_imports_no_framework():
    code = (
        "import sys, modelport, modelport.runtimes, modelport.repository.entries; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r} "
        "or m.startswith('modelport.runtimes.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr


# -- detection from files ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("filename", "content", "runtime"),
    [
        ("model.joblib", "x", "sklearn"),
        ("model.pkl", "x", "sklearn"),
        ("clf.pickle", "x", "sklearn"),
        ("model.json", XGB_JSON, "xgboost"),
        ("booster.ubj", "x", "xgboost"),
        ("model.bst", "x", "xgboost"),
        ("model.txt", LGB_TXT, "lightgbm"),
        ("model.onnx", "x", "onnx"),
        ("model.pt", "x", "torch"),
        ("weights.pth", "x", "torch"),
        ("program.pt2", "x", "torch"),
    ],
)
def test_detect_single_files_and_folders(tmp_path, filename, content, runtime):
    path = touch(tmp_path / "model" / filename, content)
    assert detect_runtime(path) == runtime
    assert detect_runtime(path.parent) == runtime
    assert find_model_file(path.parent, runtime) == path


def test_signatures_decide_json_and_txt(tmp_path):
    with pytest.raises(SettingsError, match="cannot tell which runtime"):
        detect_runtime(touch(tmp_path / "model.json", '{"weights": [1, 2]}'))
    with pytest.raises(SettingsError, match="cannot tell which runtime"):
        detect_runtime(touch(tmp_path / "notes.txt", "some notes"))


def test_detect_huggingface_folder(tmp_path):
    folder = tmp_path / "bert"
    touch(folder / "config.json", '{"architectures": ["BertModel"]}')
    touch(folder / "tokenizer.json", "{}")
    touch(folder / "vocab.txt", "[PAD]\n[UNK]\n")
    touch(folder / "model.safetensors")
    assert detect_runtime(folder) == "huggingface"
    assert find_model_file(folder, "huggingface") == folder
    # config.json alone (no tokenizer) is not a Hugging Face model folder
    bare = tmp_path / "bare"
    touch(bare / "config.json", "{}")
    with pytest.raises(SettingsError, match="no model file"):
        detect_runtime(bare)


def test_ambiguous_folder_lists_what_was_found(tmp_path):
    touch(tmp_path / "model.joblib")
    touch(tmp_path / "model.onnx")
    touch(tmp_path / "model-settings.json", "{}")
    with pytest.raises(SettingsError) as info:
        detect_runtime(tmp_path)
    message = str(info.value)
    assert "sklearn: model.joblib" in message and "onnx: model.onnx" in message and "implementation" in message


def test_nothing_found_lists_files_and_what_is_supported(tmp_path):
    touch(tmp_path / "README.md")
    touch(tmp_path / "model-settings.json", "{}")
    with pytest.raises(SettingsError) as info:
        detect_runtime(tmp_path)
    message = str(info.value)
    assert "README.md" in message and "model-settings.json" not in message
    assert ".onnx" in message and ".joblib" in message and "implementation" in message


def test_find_model_file_prefers_well_known_names(tmp_path):
    touch(tmp_path / "model.joblib")
    touch(tmp_path / "old.pkl")
    assert find_model_file(tmp_path, "sklearn") == tmp_path / "model.joblib"
    other = tmp_path / "other"
    touch(other / "a.onnx")
    touch(other / "b.onnx")
    with pytest.raises(SettingsError, match=r"Several onnx model files .*a\.onnx, b\.onnx"):
        find_model_file(other, "onnx")
    with pytest.raises(SettingsError, match="No torch model file"):
        find_model_file(other, "torch")


def test_a_folder_holding_one_folder_is_looked_into(tmp_path):
    model = touch(tmp_path / "unpacked" / "iris" / "model.onnx")
    assert detect_runtime(tmp_path / "unpacked") == "onnx"
    assert find_model_file(tmp_path / "unpacked", "onnx") == model


# -- from model settings -----------------------------------------------------------------------
def test_find_runtime_uses_uri_or_the_settings_folder(tmp_path):
    touch(tmp_path / "a" / "model.onnx")
    touch(tmp_path / "a" / "model-settings.json", json.dumps({"name": "a"}))
    assert find_runtime(load_model_settings(tmp_path / "a" / "model-settings.json")) == RUNTIMES["onnx"]
    touch(tmp_path / "b" / "weights" / "model.txt", LGB_TXT)
    touch(tmp_path / "b" / "model-settings.json", json.dumps({"name": "b", "parameters": {"uri": "./weights"}}))
    assert find_runtime(load_model_settings(tmp_path / "b" / "model-settings.json")) == RUNTIMES["lightgbm"]
    # a remote file named like a model needs no download to be classified
    assert find_runtime(settings(uri="s3://bucket/models/iris.onnx")) == RUNTIMES["onnx"]


def test_find_runtime_errors_name_the_model(tmp_path):
    touch(tmp_path / "model-settings.json", "{}")
    with pytest.raises(SettingsError, match="Model empty: no model file found"):
        find_runtime(settings(name="empty", folder=str(tmp_path)))
    with pytest.raises(SettingsError, match="no parameters.uri"):
        find_runtime(settings(name="nowhere"))


def test_build_model_resolves_aliases_and_detects(tmp_path):
    touch(tmp_path / "model.joblib")
    model = build_model(settings(name="iris", implementation="mlserver_sklearn.SKLearnModel", folder=str(tmp_path)))
    assert type(model).__name__ == "SKLearnModel" and type(model).__module__ == "modelport.runtimes.sklearn"
    model = build_model(settings(name="iris", folder=str(tmp_path)))
    assert type(model).__name__ == "SKLearnModel" and model.settings.name == "iris"


# -- serving one file --------------------------------------------------------------------------
def test_settings_for_file(tmp_path):
    path = touch(tmp_path / "iris.onnx")
    s = settings_for_file(path)
    assert (s.name, s.implementation, s.uri) == ("iris", RUNTIMES["onnx"], str(path.resolve()))
    assert settings_for_file(path, name="flowers").name == "flowers"
    folder = tmp_path / "sentiment"
    touch(folder / "config.json", "{}")
    touch(folder / "tokenizer.json", "{}")
    s = settings_for_file(folder)
    assert (s.name, s.implementation) == ("sentiment", RUNTIMES["huggingface"])
    with pytest.raises(SettingsError, match="does not exist"):
        settings_for_file(tmp_path / "missing.onnx")
    with pytest.raises(SettingsError, match="cannot tell which runtime"):
        settings_for_file(touch(tmp_path / "data.csv"))
    s = settings_for_file("s3://bucket/models/iris.pt2")  # classified by name: nothing is downloaded
    assert (s.name, s.implementation, s.uri) == ("iris", RUNTIMES["torch"], "s3://bucket/models/iris.pt2")


def test_settings_for_an_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELPORT_MODEL_CACHE", str(tmp_path / "cache"))
    source = touch(tmp_path / "src" / "model.txt", LGB_TXT)
    archive = tmp_path / "booster.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname="model.txt")
    s = settings_for_file(archive)
    assert (s.name, s.implementation) == ("booster", RUNTIMES["lightgbm"])


# -- missing frameworks name their extra -------------------------------------------------------
@pytest.mark.parametrize(
    ("runtime", "module", "extra"),
    [
        ("sklearn", "joblib", "sklearn"),
        ("xgboost", "xgboost", "xgboost"),
        ("lightgbm", "lightgbm", "lightgbm"),
        ("onnx", "onnxruntime", "onnx"),
        ("torch", "torch", "torch"),
        ("huggingface", "torch", "huggingface"),
    ],
)
def test_missing_framework_names_the_extra(monkeypatch, runtime, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    model = build_model(settings(name="m", implementation=runtime, uri="/nonexistent"))
    with pytest.raises(ImportError, match=rf"pip install 'modelport\[{extra}\]'"):
        model.load()


# -- a file the framework cannot read: the error names it --------------------------------------
@pytest.mark.parametrize(
    ("runtime", "framework", "filename", "content"),
    [
        ("sklearn", "sklearn", "model.joblib", "not a pickle"),
        ("xgboost", "xgboost", "model.json", '{"learner": "broken"}'),
        ("lightgbm", "lightgbm", "model.txt", "tree\nversion=v4\nbroken"),
        ("onnx", "onnxruntime", "model.onnx", "not a graph"),
        ("torch", "torch", "model.pt2", "not an archive"),
        ("torch", "torch", "model.pt", "not an archive"),
    ],
)
def test_load_failure_names_the_file(tmp_path, runtime, framework, filename, content):
    pytest.importorskip(framework)
    from modelport.runtimes._common import ModelLoadError

    path = touch(tmp_path / filename, content)
    model = build_model(settings(name="broken", implementation=runtime, folder=str(tmp_path)))
    with pytest.raises(ModelLoadError) as info:
        model.load()
    assert str(path) in str(info.value)
    assert not model.ready


def test_huggingface_folder_without_config_is_refused(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("torch")
    from modelport.runtimes._common import ModelLoadError

    touch(tmp_path / "tokenizer.json", "{}")
    model = build_model(settings(name="hf", implementation="huggingface", folder=str(tmp_path)))
    with pytest.raises(ModelLoadError, match="no config.json"):
        model.load()


def test_unknown_method_is_a_settings_error(tmp_path):
    pytest.importorskip("sklearn")
    touch(tmp_path / "model.joblib")
    model = build_model(settings(name="m", implementation="sklearn", folder=str(tmp_path), method="decision"))
    with pytest.raises(SettingsError, match="predict, predict_proba"):
        model.load()

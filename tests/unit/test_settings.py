"""modelport.settings: server settings precedence and validation; MLServer model-settings.json."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from modelport.errors import InvalidInput
from modelport.settings import (
    ENV_PREFIX,
    ModelParameters,
    ModelSettings,
    ServerSettings,
    SettingsError,
    find_model_settings,
    load_model_settings,
    load_server_settings,
    model_settings_from_dict,
)


def _file(tmp_path: Path, doc, name: str = "settings.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _load(tmp_path: Path | None = None, file=None, env=None, overrides=None) -> ServerSettings:
    path = _file(tmp_path, file) if file is not None else None
    return load_server_settings(path, env=env or {}, overrides=overrides)


def _error(fragments, **kwargs) -> str:
    with pytest.raises(SettingsError) as info:
        _load(**kwargs)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


# -- server settings: precedence ------------------------------------------------------------------


def test_defaults():
    s = _load()
    assert s == ServerSettings()
    assert (s.http_port, s.grpc_port, s.enable_grpc, s.workers, s.grace_period) == (8080, 8081, True, 1, 30.0)
    assert s.model_repository is None and s.predictor_host is None and s.log_format == "text"


# field, file value, env text, override value -- each layer differs from the default and the one below it
LAYERS = [
    ("http_port", 9000, "9001", 9002),
    ("enable_grpc", False, "true", False),
    ("access_log", True, "no", True),
    ("grace_period", 5, "7.5", 0.25),
    ("log_level", "debug", "warning", "error"),
    ("model_repository", "/from/file", "/from/env", "/from/override"),
    ("predictor_host", "file:1", "env:2", "override:3"),
    ("predictor_request_timeout_seconds", 1.5, "2", 3),
    ("max_request_size", 1024, "2048", 4096),
]


@pytest.mark.parametrize("field, file_value, env_text, override", LAYERS, ids=[layer[0] for layer in LAYERS])
def test_each_layer_overrides_the_one_before(tmp_path, field, file_value, env_text, override):
    default = getattr(ServerSettings(), field)
    kind = type(default) if default is not None else str

    def typed(value):
        if kind is bool and isinstance(value, str):
            return value in ("true", "1", "yes", "on")
        return kind(value)

    env = {ENV_PREFIX + field.upper(): env_text}
    assert getattr(_load(tmp_path, file={field: file_value}), field) == typed(file_value)
    assert getattr(_load(tmp_path, file={field: file_value}, env=env), field) == typed(env_text)
    s = _load(tmp_path, file={field: file_value}, env=env, overrides={field: override})
    assert getattr(s, field) == typed(override)
    assert type(getattr(s, field)) is kind
    # Without the higher layers, the lower one shows through.
    assert getattr(_load(env=env), field) == typed(env_text)
    assert getattr(_load(overrides={field: override}), field) == typed(override)
    assert typed(file_value) != default and typed(env_text) != typed(file_value) and typed(override) != typed(env_text)


def test_layers_combine_field_by_field(tmp_path):
    s = _load(
        tmp_path,
        file={"http_port": 1, "grpc_port": 2, "workers": 3},
        env={"MODELPORT_GRPC_PORT": "20", "MODELPORT_WORKERS": "30"},
        overrides={"workers": 300, "http_port": None},  # None: the flag was not given
    )
    assert (s.http_port, s.grpc_port, s.workers) == (1, 20, 300)


def test_optional_setting_can_be_null_in_the_file(tmp_path):
    assert _load(tmp_path, file={"model_repository": None}).model_repository is None
    assert (
        _load(tmp_path, file={"predictor_host": None}, env={"MODELPORT_PREDICTOR_HOST": "h:1"}).predictor_host == "h:1"
    )


def test_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("MODELPORT_HTTP_PORT", "7777")
    monkeypatch.setenv("MODELPORT_ENABLE_METRICS", "off")
    s = load_server_settings()
    assert s.http_port == 7777 and s.enable_metrics is False


@pytest.mark.parametrize(
    "text, value",
    [
        ("1", True),
        ("TRUE", True),
        (" yes ", True),
        ("On", True),
        ("0", False),
        ("False", False),
        ("no", False),
        ("off", False),
    ],
)
def test_bool_spellings(text, value):
    assert _load(env={"MODELPORT_ENABLE_DOCS": text}).enable_docs is value


def test_numbers_from_text_and_json():
    assert _load(env={"MODELPORT_HTTP_PORT": " 80 "}).http_port == 80
    assert _load(overrides={"http_port": 81.0}).http_port == 81  # an integral float is fine
    assert _load(overrides={"grace_period": 2}).grace_period == 2.0
    assert _load(overrides={"host": "::1"}).host == "::1"


def test_modelport_variables_that_are_not_settings_are_ignored():
    env = {
        "MODELPORT_NOT_A_SETTING": "x",
        "MODELPORT_": "y",
        "MODELPORT_HTTP_PORT_EXTRA": "z",
        "HTTP_PORT": "1",
        "modelport_http_port": "2",
        "XMODELPORT_HTTP_PORT": "3",
        "MODELPORT_HTTP_PORT": "4",
    }
    assert _load(env=env).http_port == 4


def test_missing_settings_file_means_defaults(tmp_path):
    assert load_server_settings(tmp_path / "settings.json", env={}) == ServerSettings()
    assert load_server_settings(tmp_path, env={}) == ServerSettings()  # a folder is not a file


# -- server settings: errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, fragments",
    [
        ({"env": {"MODELPORT_ENABLE_GRPC": "maybe"}}, ["enable_grpc", "'maybe'"]),
        ({"overrides": {"access_log": "maybe"}}, ["access_log", "maybe"]),
        ({"overrides": {"enable_docs": 2}}, ["enable_docs"]),
        ({"env": {"MODELPORT_HTTP_PORT": "1.5"}}, ["http_port", "1.5"]),
        ({"env": {"MODELPORT_WORKERS": "two"}}, ["workers", "two"]),
        ({"overrides": {"workers": 1.5}}, ["workers", "1.5"]),
        ({"overrides": {"http_port": True}}, ["http_port"]),
        ({"env": {"MODELPORT_GRACE_PERIOD": "soon"}}, ["grace_period", "soon"]),
        ({"overrides": {"grace_period": False}}, ["grace_period"]),
        ({"env": {"MODELPORT_HTTP_PORT": "70000"}}, ["http_port", "70000", "TCP port"]),
        ({"overrides": {"grpc_port": -1}}, ["grpc_port", "-1"]),
        ({"env": {"MODELPORT_WORKERS": "0"}}, ["workers", "at least 1"]),
        ({"overrides": {"inference_threads": 0}}, ["inference_threads"]),
        ({"overrides": {"max_request_size": -5}}, ["max_request_size"]),
        ({"overrides": {"grpc_max_message_size": 0}}, ["grpc_max_message_size"]),
        ({"overrides": {"log_format": "xml"}}, ["log_format", "'xml'"]),
        ({"overrides": {"predictor_protocol": "v3"}}, ["predictor_protocol", "'v3'"]),
        ({"overrides": {"no_such_setting": 1}}, ["Unknown server setting", "no_such_setting"]),
    ],
)
def test_bad_values_name_the_setting(kwargs, fragments):
    _error(fragments, **kwargs)


@pytest.mark.parametrize(
    "doc, fragments",
    [
        ({"http_port": 1, "colour": "blue", "size": 2, "strict_settings": True}, ["Unknown server setting", "colour", "size", "strict"]),
        ({"http_port": [8080]}, ["http_port"]),
        ({"grace_period": {"s": 1}}, ["grace_period"]),
        ({"enable_grpc": "perhaps"}, ["enable_grpc"]),
        ({"http_port": None}, ["http_port", "null"]),
        ([1, 2], ["must hold a JSON object"]),
        ("{not json", ["Cannot read settings file"]),
    ],
)
def test_bad_settings_file(tmp_path, doc, fragments):
    message = _error(fragments, tmp_path=tmp_path, file=doc)
    if "file" in message:
        assert str(tmp_path) in message


def test_settings_error_is_invalid_input():
    assert issubclass(SettingsError, InvalidInput)


# -- model settings ------------------------------------------------------------------------------

MLSERVER = {
    "name": "iris",
    "implementation": "mlserver_sklearn.SKLearnModel",
    "parameters": {
        "uri": "./model.joblib",
        "version": "v1.2",
        "content_type": "np",
        "extra": {"method": "predict_proba", "threads": 2},
    },
    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
    "outputs": [{"name": "y", "datatype": "INT64", "shape": [-1]}],
    "platform": "sklearn",
    "max_batch_size": 16,
    "max_batch_time": 0.5,
}


def test_mlserver_model_settings(tmp_path):
    folder = tmp_path / "iris"
    folder.mkdir()
    path = _file(folder, MLSERVER, "model-settings.json")
    s = load_model_settings(path)
    assert isinstance(s, ModelSettings)
    assert s.name == "iris" and s.implementation == "mlserver_sklearn.SKLearnModel"
    assert s.parameters == ModelParameters(
        uri="./model.joblib", version="v1.2", content_type="np", extra={"method": "predict_proba", "threads": 2}
    )
    assert s.version == "v1.2"
    assert s.uri == str(folder / "model.joblib")  # relative to the settings folder
    assert s.inputs == MLSERVER["inputs"] and s.outputs == MLSERVER["outputs"]
    assert s.platform == "sklearn"
    assert s.max_batch_size == 16 and s.max_batch_time == 0.5
    assert (s.max_queue_size, s.parallel_workers) == (0, 0)
    assert s.folder == str(folder)


def test_model_settings_defaults_and_name_from_folder(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    s = load_model_settings(_file(folder, {}, "model-settings.json"))
    assert s.name == "my-model"
    assert s.implementation is None and s.parameters == ModelParameters() and s.uri is None and s.version is None
    assert (s.inputs, s.outputs, s.platform, s.max_batch_size, s.max_batch_time) == ([], [], "", 0, 0.0)
    # An explicit name wins over the folder's.
    assert load_model_settings(_file(folder, {"name": "other"}, "model-settings.json")).name == "other"


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("model.joblib", "/models/iris/model.joblib"),
        ("./sub/../model.pt", "/models/iris/model.pt"),
        ("../shared/model.onnx", "/models/shared/model.onnx"),
        ("/abs/model.bst", "/abs/model.bst"),
        ("s3://bucket/key", "s3://bucket/key"),
        ("file:///x/y", "file:///x/y"),
    ],
)
def test_uri_resolution(uri, expected):
    s = model_settings_from_dict({"name": "iris", "parameters": {"uri": uri}}, folder="/models/iris")
    assert s.uri == expected
    assert s.parameters.uri == uri  # the raw value is kept
    assert model_settings_from_dict({"name": "iris", "parameters": {"uri": uri}}).uri == uri  # no folder: as given


@pytest.mark.parametrize("version, expected", [(1, "1"), (2.5, "2.5"), ("v3", "v3"), (None, None)])
def test_version_is_a_string(version, expected):
    assert model_settings_from_dict({"name": "m", "parameters": {"version": version}}).version == expected


def test_numeric_model_settings_are_coerced():
    s = model_settings_from_dict({"name": "m", "max_batch_size": "8", "max_batch_time": "0.25", "max_queue_size": 4.0})
    assert (s.max_batch_size, s.max_batch_time, s.max_queue_size) == (8, 0.25, 4)


@pytest.mark.parametrize(
    "doc, fragments",
    [
        ({"name": "m", "folder": "/etc"}, ["Unknown model setting", "folder"]),
        ({"name": "m", "parameters": {"environment_tarball": "env.tar.gz"}}, ["m", "environment_tarball", "not supported"]),
        ({"name": "m", "versions": "v1"}, ["m", '"versions" must be a list']),
        ({"name": "m", "parameters": ["uri"]}, ["m", '"parameters" must be an object']),
        ({"name": "m", "inputs": {"x": 1}}, ["m", '"inputs" must be a list']),
        ({"name": "m", "outputs": "y"}, ["m", '"outputs" must be a list']),
        ({"name": "m", "max_batch_size": "many"}, ["m.max_batch_size", "many"]),
        ({"name": "m", "max_batch_size": 1.5}, ["m.max_batch_size"]),
        ({"name": "m", "max_batch_time": "later"}, ["m.max_batch_time"]),
        ({"name": "m", "max_batch_size": None}, ["m.max_batch_size"]),
        ({"name": "m", "max_queue_size": [1]}, ["m.max_queue_size"]),
        ({"name": "m", "parallel_workers": True}, ["m.parallel_workers"]),
        ({"name": 5}, ['"name"']),
        ({}, ['"name"']),
    ],
)
def test_bad_model_settings(doc, fragments):
    with pytest.raises(SettingsError) as info:
        model_settings_from_dict(doc, folder="/models/m" if doc.get("name") != 5 else None)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_bad_model_settings_file_names_the_folder(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    with pytest.raises(SettingsError, match="nope") as info:
        load_model_settings(_file(folder, {"nope": 1}, "model-settings.json"), strict=True)
    assert str(folder) in str(info.value)
    with pytest.raises(SettingsError, match="Cannot read model settings file"):
        load_model_settings(_file(folder, "{", "model-settings.json"))
    with pytest.raises(SettingsError, match="Cannot read model settings file"):
        load_model_settings(folder / "missing" / "model-settings.json")


def test_model_settings_fields_are_the_documented_ones():
    names = {f.name for f in dataclasses.fields(ModelSettings)}
    assert {"name", "implementation", "parameters", "inputs", "outputs", "max_batch_size", "max_batch_time"} <= names


# -- find_model_settings -------------------------------------------------------------------------


def test_find_model_settings_finds_models_and_nested_versions(tmp_path):
    layout = [
        "iris/model-settings.json",
        "sentiment/v1/model-settings.json",
        "sentiment/v2/model-settings.json",
        "deep/a/b/c/model-settings.json",
        "notes/README.md",
        "iris/settings.json",
    ]
    for rel in layout:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    found = find_model_settings(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "deep/a/b/c/model-settings.json",
        "iris/model-settings.json",
        "sentiment/v1/model-settings.json",
        "sentiment/v2/model-settings.json",
    ]
    assert found == find_model_settings(str(tmp_path))  # stable; str works too
    versions = [load_model_settings(p) for p in found if "sentiment" in p.parts]
    assert [v.name for v in versions] == ["v1", "v2"]  # nameless settings are named after their folder


def test_find_model_settings_in_an_empty_folder(tmp_path):
    assert find_model_settings(tmp_path) == []


def test_find_model_settings_missing_folder(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(SettingsError, match="does not exist") as info:
        find_model_settings(missing)
    assert str(missing) in str(info.value)
    a_file = _file(tmp_path, {}, "model-settings.json")
    with pytest.raises(SettingsError, match="not a folder"):
        find_model_settings(a_file)
    assert not os.path.exists(missing)


def test_model_server_arguments_are_validated_like_settings():
    from modelport import ModelServer
    from modelport.settings import SettingsError

    with pytest.raises(SettingsError, match="http_port"):
        ModelServer(http_port=70000)
    with pytest.raises(SettingsError, match="workers"):
        ModelServer(workers=0)
    with pytest.raises(TypeError, match="no_such"):
        ModelServer(no_such=1)

"""MLServer's settings files and MLSERVER_* variables, as MLServer users have them."""

from __future__ import annotations

import json
import logging

import pytest

from modelport.settings import SettingsError, load_model_settings, load_server_settings, model_settings_from_dict

MLSERVER_SETTINGS = {
    "debug": True,
    "parallel_workers": 0,
    "host": "127.0.0.1",
    "http_port": 9080,
    "grpc_port": 9081,
    "metrics_port": 9082,
    "load_models_at_startup": False,
    "model_repository_root": "/models",
    "grpc_max_message_length": -1,
    "server_name": "from-mlserver",
    "use_structured_logging": True,
}


def test_mlserver_settings_file_loads(tmp_path, caplog):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(MLSERVER_SETTINGS))
    with caplog.at_level(logging.WARNING, "modelport"):
        s = load_server_settings(path, env={})
    assert (s.host, s.http_port, s.grpc_port, s.server_name) == ("127.0.0.1", 9080, 9081, "from-mlserver")
    assert s.debug and s.log_level == "debug" and s.log_format == "json"
    assert s.load_models_at_startup is False and s.model_repository == "/models"
    assert s.grpc_max_message_size == -1  # unlimited, as MLServer's -1
    assert "metrics_port" in caplog.text  # accepted, and says metrics are on the HTTP port


def test_unknown_and_unsupported_keys_warn_by_name(tmp_path, caplog):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"http_port": 1234, "colour": "blue", "kafka_enabled": True}))
    with caplog.at_level(logging.WARNING, "modelport"):
        s = load_server_settings(path, env={})
    assert s.http_port == 1234
    assert "colour" in caplog.text and "Unknown server setting" in caplog.text
    assert "kafka_enabled" in caplog.text and "Kafka is not supported" in caplog.text


@pytest.mark.parametrize("how", ["file", "env", "override"])
def test_strict_settings_refuse_unknown_keys(tmp_path, how):
    path = tmp_path / "settings.json"
    doc = {"colour": "blue", **({"strict_settings": True} if how == "file" else {})}
    path.write_text(json.dumps(doc))
    env = {"MODELPORT_STRICT_SETTINGS": "true"} if how == "env" else {}
    overrides = {"strict_settings": True} if how == "override" else {}
    with pytest.raises(SettingsError, match="colour"):
        load_server_settings(path, env=env, overrides=overrides)


def test_mlserver_env_below_modelport_env_below_flags(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"http_port": 1000, "grpc_port": 1001, "host": "10.0.0.1"}))
    env = {
        "MLSERVER_HTTP_PORT": "2000", "MLSERVER_GRPC_PORT": "2001", "MLSERVER_HOST": "127.0.0.2",
        "MODELPORT_GRPC_PORT": "3001",
        "MLSERVER_MODELS_DIR": "/mnt/models", "MLSERVER_LOAD_MODELS_AT_STARTUP": "false",
        "MLSERVER_GRPC_MAX_MESSAGE_LENGTH": "-1", "MLSERVER_DEBUG": "true",
        "MLSERVER_PARALLEL_WORKERS": "1", "MLSERVER_MODEL_PARALLEL_WORKERS": "2",
        "MLSERVER_MODEL_NAME": "dummy-model-fixme", "MLSERVER_MODEL_IMPLEMENTATION": "sklearn",
        "MLSERVER_MODEL_URI": "/mnt/models/model.joblib", "MLSERVER_MODEL_VERSION": "7",
    }
    s = load_server_settings(path, env=env, overrides={"host": "127.0.0.3"})
    assert s.http_port == 2000  # MLSERVER_* beats the file
    assert s.grpc_port == 3001  # MODELPORT_* beats MLSERVER_*
    assert s.host == "127.0.0.3"  # flags beat everything
    assert s.model_repository == "/mnt/models" and s.load_models_at_startup is False
    assert s.grpc_max_message_size == -1 and s.log_level == "debug"
    assert s.parallel_workers == 2  # the per-model variable wins over the server-wide one
    assert (s.default_model_name, s.default_model_implementation, s.default_model_uri, s.default_model_version) == (
        "dummy-model-fixme", "sklearn", "/mnt/models/model.joblib", "7")


def test_grpc_message_length_other_negatives_refused():
    with pytest.raises(SettingsError, match="-1 for no limit"):
        load_server_settings(None, env={"MLSERVER_GRPC_MAX_MESSAGE_LENGTH": "-2"})


def test_mlserver_model_settings_load(tmp_path, caplog):
    folder = tmp_path / "iris"
    folder.mkdir()
    (folder / "model-settings.json").write_text(json.dumps({
        "name": "iris",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "versions": ["iris/v1", 2],
        "warm_workers": True,
        "parallel_workers": 0,
        "cache_enabled": False,
        "parameters": {"uri": "./model.joblib", "version": "v1", "format": "joblib", "content_type": "np",
                        "environment_path": "./env", "inference_pool_gid": "pool-a", "extra": {"k": 1}},
    }))
    with caplog.at_level(logging.WARNING, "modelport"):
        s = load_model_settings(folder / "model-settings.json")
    assert s.versions == ["iris/v1", "2"] and s.parameters.format == "joblib" and s.parameters.environment_path == "./env"
    assert s.parameters.extra == {"k": 1} and s.version == "v1"
    assert caplog.text == ""  # MLServer's own fields are known: no warning


def test_unknown_model_keys_warn_and_strict_refuses(caplog):
    with caplog.at_level(logging.WARNING, "modelport"):
        s = model_settings_from_dict({"name": "m", "colour": "red", "parameters": {"shade": 1}})
    assert s.name == "m" and "colour" in caplog.text and "shade" in caplog.text
    with pytest.raises(SettingsError, match="colour"):
        model_settings_from_dict({"name": "m", "colour": "red"}, strict=True)


def test_environment_tarball_is_refused_clearly():
    with pytest.raises(SettingsError) as info:
        model_settings_from_dict({"name": "m", "parameters": {"environment_tarball": "./env.tar.gz"}})
    assert "environment_tarball is not supported" in str(info.value) and "environment_path" in str(info.value)


async def test_environment_path_is_imported_from(serve, tmp_path):
    folder = tmp_path / "m"
    site = folder / "env" / "lib"
    import sys

    site = site / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    site.mkdir(parents=True)
    (site / "mp_envpkg_probe.py").write_text("ANSWER = 42\n")
    (folder / "rt.py").write_text(
        "import mp_envpkg_probe\n"
        "from modelport.mlserver import MLModel, types\n"
        "from modelport.mlserver.codecs import NumpyCodec\n"
        "import numpy as np\n"
        "class Runtime(MLModel):\n"
        "    async def predict(self, payload):\n"
        "        return types.InferenceResponse(model_name=self.name, outputs=[NumpyCodec.encode_output('a', np.array([mp_envpkg_probe.ANSWER]))])\n"
    )
    (folder / "model-settings.json").write_text(json.dumps({"name": "m", "implementation": "rt.Runtime", "parameters": {"environment_path": "./env"}}))
    server, client = await serve(model_repository=str(tmp_path))
    r = await client.post("/v2/models/m/infer", json={"inputs": [{"name": "x", "datatype": "INT64", "shape": [1], "data": [1]}]})
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [42]


async def test_default_model_from_mlserver_model_env(serve, tmp_path):
    """MLSERVER_MODEL_NAME/_IMPLEMENTATION/_URI serve a model when the folder defines none, as in MLServer."""
    from .conftest import write_sklearn
    from sklearn.datasets import load_iris

    data = load_iris()
    write_sklearn(tmp_path / "weights" / "model.joblib", (data.data.astype("float32"), data.target))
    s = load_server_settings(None, env={
        "MLSERVER_MODEL_NAME": "env-iris", "MLSERVER_MODEL_IMPLEMENTATION": "mlserver_sklearn.SKLearnModel",
        "MLSERVER_MODEL_URI": str(tmp_path / "weights" / "model.joblib"), "MLSERVER_MODEL_VERSION": "3",
    })
    empty = tmp_path / "repo"
    empty.mkdir()
    server, client = await serve(
        model_repository=str(empty), default_model_name=s.default_model_name,
        default_model_implementation=s.default_model_implementation, default_model_uri=s.default_model_uri,
        default_model_version=s.default_model_version,
    )
    r = await client.post("/v2/models/env-iris/infer", json={"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]})
    assert r.status_code == 200, r.text
    assert r.json()["model_version"] == "3" and r.json()["outputs"][0]["data"] == [0]


def test_modelport_serve_an_mlserver_folder(served, runtimes_folder):
    """`modelport serve` on a folder MLServer serves: its settings.json (with a key we do not know) and
    MLSERVER_* variables; the unknown key is one WARNING line naming it, and the runtimes serve."""
    import httpx

    from ..e2e.serving import wait_ready

    (runtimes_folder / "settings.json").write_text(json.dumps({
        "debug": False, "parallel_workers": 0, "host": "127.0.0.1", "http_port": 0, "grpc_port": 0,
        "load_models_at_startup": True, "colour": "blue",
    }))
    s = served(str(runtimes_folder), env={"MLSERVER_SERVER_NAME": "from-mlserver-env"})
    url = s.http_url()
    wait_ready(url)
    assert httpx.get(url + "/v2", timeout=10).json()["name"] == "from-mlserver-env"
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [2]}]}
    r = httpx.post(url + "/v2/models/echo-runtime/infer", json=body, timeout=30)
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [4.0]
    warnings = [line for line in s.lines if "WARNING" in line and "colour" in line]
    assert len(warnings) == 1, s.output
    assert s.stop() == 0


async def test_mlserver_model_parallel_workers_default(serve, tmp_path):
    """MLSERVER_MODEL_PARALLEL_WORKERS (server parallel_workers): models that set none run in worker processes."""
    import os

    (tmp_path / "pid").mkdir()
    (tmp_path / "pid" / "model-settings.json").write_text(json.dumps({"name": "pid", "implementation": "tests.fixture_models.PidModel"}))
    s = load_server_settings(None, env={"MLSERVER_MODEL_PARALLEL_WORKERS": "1"})
    server, client = await serve(model_repository=str(tmp_path), parallel_workers=s.parallel_workers)
    r = await client.post("/v2/models/pid/infer", json={"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1.0]}]})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"][0] != os.getpid()

"""The bench harness's peer configs (issue 24): every config builds a command line for a script that
exists, the new Python peers share one V1/V2 codec whose answers pass the harness's own checks, and
``--servers python-peers`` expands. Starting the peers needs their venvs: that is bench/run.py's job."""

import importlib.util
import json
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH / "peers"))

import iris_codec  # noqa: E402
from harness import envs, servers  # noqa: E402

# bench/run.py under a name that cannot clash with another module called "run"
_spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run)


def ctx(tmp_path: Path) -> servers.Ctx:
    return servers.Ctx(http_port=10001, grpc_port=10002, metrics_port=10003, work=tmp_path,
                       joblib=tmp_path / "iris.joblib", scenario="infer")


@pytest.mark.parametrize("name", sorted(servers.CONFIGS))
def test_every_config_builds_a_command_for_an_existing_script(name, tmp_path):
    cfg = servers.CONFIGS[name]
    argv = cfg.build(ctx(tmp_path))
    assert "10001" in " ".join(argv) or "10002" in " ".join(argv) or cfg.peer == "mlserver"
    scripts = [a for a in argv if a.endswith(".py") or a.endswith(":Iris")]
    for script in scripts:
        module = script.split(":")[0]
        path = Path(module) if module.endswith(".py") else servers.PEERS / f"{module}.py"
        assert path.exists(), f"{name}: {path} missing"
    assert cfg.venv in envs.SPECS
    assert cfg.ready_path.startswith("/")


def test_python_peers_are_configs_with_pinned_venvs_and_rest_only():
    for name in servers.PYTHON_PEERS:
        cfg = servers.CONFIGS[name]
        assert set(cfg.protocols) == {"v1", "v2"}, name  # no gRPC V2: those cells are not applicable
        spec = envs.SPECS[cfg.venv]
        assert "==" in spec[0] and "scikit-learn" in spec, spec  # one joblib serves every venv
    assert set(servers.DEFAULT_ORDER) <= set(servers.CONFIGS)


def test_servers_group_name_expands_in_place():
    args = run.parse_args(["--quick", "--servers", "floor,python-peers,modelport"])
    assert args.servers == ["floor", *servers.PYTHON_PEERS, "modelport"]
    with pytest.raises(SystemExit):
        run.parse_args(["--servers", "no-such-server"])


@pytest.mark.parametrize("rows", [1, 32])
def test_codec_answers_pass_the_harness_checks(rows, tmp_path, monkeypatch):
    x, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=1000).fit(x, y)
    joblib.dump(clf, tmp_path / "iris.joblib")
    monkeypatch.setenv("BENCH_IRIS_JOBLIB", str(tmp_path / "iris.joblib"))
    model = iris_codec.load_model()
    data = x[:rows].astype(np.float32)
    v2 = {"inputs": [{"name": "input-0", "shape": [rows, 4], "datatype": "FP32", "data": data.ravel().tolist()}],
          "id": "r1"}
    out = json.loads(json.dumps(iris_codec.v2_output(model.predict(iris_codec.v2_input(v2)), v2["id"])))
    assert out["id"] == "r1" and out["model_name"] == "iris"
    assert out["outputs"][0]["shape"] == [rows] and out["outputs"][0]["datatype"] == "INT64"
    assert out["outputs"][0]["data"] == clf.predict(data).tolist()
    v1 = json.loads(json.dumps(iris_codec.v1_output(model.predict(iris_codec.v1_input({"instances": data.tolist()})))))
    assert v1["predictions"] == clf.predict(data).tolist()
    with pytest.raises((KeyError, TypeError, ValueError)):
        iris_codec.v2_input({"inputs": [{"shape": [2, 4], "data": [1.0]}]})

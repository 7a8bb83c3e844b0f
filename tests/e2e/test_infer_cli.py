"""`modelport infer` against a real server (REST and gRPC): bodies from JSON files, stdin and .npy
files, every flag, and every failure as one line on stderr with a non-zero exit."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modelport.cli import main

from ..fixture_models import AsyncSlowModel, EchoModel, PickyModel, SumModel
from ..helpers import server_in_thread
from ..ports import refused_port

REPO = Path(__file__).resolve().parents[2]
V2_BODY = {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6.5]}]}


@pytest.fixture(scope="module")
def server():
    models = [SumModel("sum"), EchoModel(), PickyModel(), AsyncSlowModel(delay=0.5)]
    with server_in_thread(models, enable_grpc=True) as s:
        yield s


@pytest.fixture
def url(server) -> str:
    return f"http://127.0.0.1:{server.http_port}"


@pytest.fixture
def grpc(server) -> str:
    return f"127.0.0.1:{server.grpc_port}"


@pytest.fixture
def run(capsys):
    """run(*argv) -> (exit code, parsed stdout or None, stderr lines)."""

    def _run(*argv: str):
        code = main(["infer", *argv])
        out, err = capsys.readouterr()
        return code, (json.loads(out) if out.strip() else None), err.splitlines()

    return _run


def write_json(tmp_path: Path, doc) -> str:
    path = tmp_path / "body.json"
    path.write_text(json.dumps(doc))
    return str(path)


def write_npy(tmp_path: Path, array: np.ndarray, name: str = "x.npy") -> str:
    path = tmp_path / name
    np.save(path, array)
    return str(path)


# -- REST V2 ------------------------------------------------------------------------------------
def test_v2_json_file(run, url, tmp_path):
    code, out, err = run("sum", "--url", url, "--json", write_json(tmp_path, V2_BODY))
    assert code == 0 and not err
    assert out["model_name"] == "sum"
    assert out["outputs"] == [{"name": "output-0", "datatype": "FP32", "shape": [2], "data": [6.0, 15.5]}]


def test_v2_json_from_stdin(run, url, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(V2_BODY).encode())))
    code, out, _ = run("sum", "--url", url, "--json", "-")
    assert code == 0 and out["outputs"][0]["data"] == [6.0, 15.5]


def test_npy_as_one_input(run, url, tmp_path):
    path = write_npy(tmp_path, np.array([[1, 2, 3], [4, 5, 6.5]], np.float32))
    code, out, _ = run("sum", "--url", url, "--npy", path)
    assert code == 0 and out["outputs"][0]["data"] == [6.0, 15.5]
    code, out, _ = run("echo", "--url", url, "--npy", write_npy(tmp_path, np.arange(4, dtype=np.int64).reshape(2, 2)),
                       "--input-name", "pixels")
    assert out["outputs"] == [{"name": "pixels", "datatype": "INT64", "shape": [2, 2], "data": [0, 1, 2, 3]}]
    code, out, _ = run("echo", "--url", url, "--npy", write_npy(tmp_path, np.array(["héllo", "w"])))
    assert out["outputs"][0]["datatype"] == "BYTES" and out["outputs"][0]["data"] == ["héllo", "w"]


def test_output_binary(run, url, tmp_path):
    """Echo returns the request's parameters: the flag shows up as the binary-output request, and the
    printed tensors are the same either way."""
    npy = write_npy(tmp_path, np.array([0.1, 0.2], np.float32))
    _, plain, _ = run("echo", "--url", url, "--npy", npy)
    _, binary, _ = run("echo", "--url", url, "--npy", npy, "--output-binary")
    assert "parameters" not in plain and binary["parameters"] == {"binary_data_output": True}
    assert plain["outputs"] == binary["outputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [2], "data": [0.1, 0.2]}]
    _, from_json, _ = run("echo", "--url", url, "--json", write_json(tmp_path, V2_BODY), "--output-binary")
    assert from_json["parameters"] == {"binary_data_output": True}
    assert from_json["outputs"][0]["data"] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.5]


# -- REST V1 and gRPC ---------------------------------------------------------------------------
def test_v1(run, url, tmp_path):
    code, out, _ = run("sum", "--url", url, "--protocol", "v1", "--json", write_json(tmp_path, {"instances": [[1, 2], [3, 4]]}))
    assert code == 0 and out == {"predictions": [3, 7]}
    code, out, _ = run("sum", "--url", url, "--protocol", "v1", "--npy", write_npy(tmp_path, np.array([[1, 2]], np.int32)))
    assert code == 0 and out == {"predictions": [3]}


def test_grpc(run, grpc, url, tmp_path):
    code, out, _ = run("sum", "--grpc", grpc, "--json", write_json(tmp_path, V2_BODY))
    assert code == 0 and out["outputs"][0]["data"] == [6.0, 15.5]
    npy = write_npy(tmp_path, np.array([[1, 2, 3]], np.uint16))
    _, over_grpc, _ = run("echo", "--grpc", grpc, "--npy", npy)
    _, over_rest, _ = run("echo", "--url", url, "--npy", npy)
    # The same answer either way, but for the response id each one is given (a fresh uuid4 apiece).
    assert over_grpc.pop("id") != over_rest.pop("id")
    assert over_grpc == over_rest and over_grpc["outputs"][0]["data"] == [1, 2, 3]


# -- failures -----------------------------------------------------------------------------------
def one_line(code: int, out, err: list[str], expected_code: int, *fragments: str) -> None:
    assert code == expected_code and out is None and len(err) == 1, (code, out, err)
    assert err[0].startswith("modelport infer: ")
    for fragment in fragments:
        assert fragment in err[0], err


def test_server_errors(run, url, grpc, tmp_path):
    body = write_json(tmp_path, V2_BODY)
    one_line(*run("picky", "--url", url, "--json", body), 1, "HTTP 400", "picky wants exactly one positive number")
    one_line(*run("picky", "--grpc", grpc, "--json", body), 1, "INVALID_ARGUMENT", "picky wants exactly one positive number")
    one_line(*run("nope", "--url", url, "--json", body), 1, "404", "Model nope not found")
    with refused_port() as port:
        one_line(*run("sum", "--url", f"http://127.0.0.1:{port}", "--json", body), 1, "Cannot reach")


def test_timeout(run, url, grpc, tmp_path):
    body = write_json(tmp_path, V2_BODY)
    one_line(*run("aslow", "--url", url, "--json", body, "--timeout", "0.1"), 1, "timeout")
    one_line(*run("aslow", "--grpc", grpc, "--json", body, "--timeout", "0.1"), 1, "timeout")
    code, out, _ = run("aslow", "--url", url, "--json", body, "--timeout", "5")
    assert code == 0 and out["outputs"][0]["data"] == [1.0]


def test_bad_input(run, url, grpc, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    one_line(*run("sum", "--url", url, "--json", str(broken)), 2, "not valid JSON")
    one_line(*run("sum", "--url", url, "--json", str(tmp_path / "missing.json")), 2, "cannot read")
    one_line(*run("sum", "--url", url, "--npy", str(broken)), 2, "cannot read")
    v1_body = write_json(tmp_path, {"instances": [[1]]})
    one_line(*run("sum", "--url", url, "--json", v1_body), 2, "--protocol v1")
    one_line(*run("sum", "--grpc", grpc, "--protocol", "v1", "--json", v1_body), 2, "V2")
    one_line(*run("sum", "--url", url, "--protocol", "v1", "--json", v1_body, "--output-binary"), 2, "REST V2 only")
    one_line(*run("sum", "--grpc", grpc, "--json", write_json(tmp_path, {"inputs": [{"name": "x"}]})), 2, "datatype")
    with pytest.raises(SystemExit):  # argparse: --json or --npy is required
        main(["infer", "sum", "--url", url])


def test_as_a_subprocess(url, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    body = write_json(tmp_path, V2_BODY)
    done = subprocess.run([sys.executable, "-m", "modelport.cli", "infer", "sum", "--url", url, "--json", body],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert json.loads(done.stdout)["outputs"][0]["data"] == [6.0, 15.5]
    done = subprocess.run([sys.executable, "-m", "modelport.cli", "infer", "picky", "--url", url, "--json", body],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == ["modelport infer: HTTP 400: picky wants exactly one positive number"]

"""KServe's Python surface under modelport: import coverage, model_server.parser and flags,
ModelServer's KServe arguments, the InferRequest/InferResponse conversions, and `serve --model_dir`."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pytest

import modelport
from modelport import InferInput, InferOutput, InferRequest, InferResponse, ModelServer, model_server
from modelport.compat.kserve.flags import settings_from_argv
from tests.e2e.serving import served, wait_ready  # noqa: F401  (the `modelport serve` subprocess fixture)

IMPORTS = Path(__file__).with_name("kserve_imports.txt")
# KServe names with no modelport counterpart, and why (README: Migrating from KServe).
KNOWN_GAPS = {"from modelport.model_server import app"}  # KServe's FastAPI app; modelport's REST app is plain ASGI


def kserve_imports() -> list[str]:
    return [line.strip() for line in IMPORTS.read_text().splitlines() if line.strip() and not line.startswith("#")]


def test_import_coverage():
    lines = kserve_imports()
    assert len(lines) == 30
    failed = []
    for line in lines:
        ours = re.sub(r"\bkserve\b", "modelport", line)
        try:
            exec(ours, {})
        except ImportError:
            failed.append(ours)
    share = (len(lines) - len(failed)) / len(lines)
    print(f"KServe import coverage: {len(lines) - len(failed)}/{len(lines)} = {share:.0%}")
    assert set(failed) == KNOWN_GAPS


def test_argparse_parents_and_kserve_defaults():
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--my_flag", default="x")
    args, _ = parser.parse_known_args(["--http_port", "9000", "--model_name", "m", "--enable_grpc", "false", "--x", "1"])
    assert (args.http_port, args.grpc_port, args.model_name, args.enable_grpc, args.my_flag) == (9000, 8081, "m", False, "x")
    assert (args.predictor_host, args.predictor_protocol, args.workers, args.max_threads) == (None, "v1", 1, 4)


def test_flags_env_and_constructor_precedence():
    argv = ["--http_port", "9001", "--grpc_port", "9002", "--max_threads", "3", "--enable_docs_url", "false",
            "--predictor_host", "p:80", "--protocol", "v2", "--unknown_flag", "1", "--max_asyncio_workers", "5"]
    env = {"MODELPORT_HTTP_PORT": "7000", "MODELPORT_HOST": "127.0.0.1", "MODELPORT_GRACE_PERIOD": "3"}
    s, given = settings_from_argv(argv, {"grpc_port": 9100}, env)
    assert (s.http_port, s.grpc_port, s.inference_threads, s.enable_docs) == (9001, 9100, 3, False)
    assert (s.host, s.grace_period, s.max_asyncio_workers) == ("127.0.0.1", 3.0, 5)
    assert (s.predictor_host, s.predictor_protocol) == ("p:80", "v2")
    assert given.http_port == 9001 and not hasattr(given, "workers")  # only what was on the command line


def test_model_server_accepts_kserve_arguments():
    config = modelport.PredictorConfig("127.0.0.1:1", "grpc-v2", predictor_request_timeout_seconds=5)
    server = ModelServer(max_asyncio_workers=4, enable_latency_logging=True, access_log_format="%(h)s",
                         predictor_config=config, grace_period=1)
    s = server.settings
    assert (s.max_asyncio_workers, s.enable_latency_logging, s.access_log_format) == (4, True, "%(h)s")
    assert (s.predictor_host, s.predictor_protocol, s.predictor_request_timeout_seconds) == ("127.0.0.1:1", "grpc-v2", 5)
    assert modelport.PredictorProtocol("grpc-v2") is modelport.PredictorProtocol.GRPC_V2


def _request() -> InferRequest:
    x = InferInput("x", [2, 2], "FP32")
    x.set_data_from_numpy(np.array([[1, 2], [3, 4]], dtype=np.float32), binary_data=False)
    s = InferInput("s", [1], "BYTES", ["hé"])
    return InferRequest("m", [x, s], request_id="r1", parameters={"p": 1})


def test_infer_request_conversions_round_trip():
    req = _request()
    doc, length = req.to_rest()
    assert length is None and doc["inputs"][0]["data"] == [1, 2, 3, 4]
    assert InferRequest.from_inference_request(doc, "m") == req
    assert InferRequest.from_grpc(req.to_grpc()) == req
    req.inputs[0].set_data_from_numpy(req.inputs[0].as_numpy(), binary_data=True)
    body, length = req.to_rest()
    assert isinstance(body, bytes) and length is not None
    back = InferRequest.from_bytes(body, length, "m")
    assert np.array_equal(back.inputs[0].as_numpy(), np.array([[1, 2], [3, 4]], dtype=np.float32))


def test_infer_response_conversions_round_trip():
    out = InferOutput("y", [3], "INT64")
    out.set_data_from_numpy(np.array([1, 2, 3]), binary_data=False)
    res = InferResponse("r1", "m", [out], parameters={"q": "v"})
    doc, length = res.to_rest()
    assert length is None and doc["outputs"][0]["data"] == [1, 2, 3]
    assert InferResponse.from_rest(doc) == res
    assert InferResponse.from_grpc(res.to_grpc()) == res
    res.use_binary_outputs = True
    body, length = res.to_rest()
    assert np.array_equal(InferResponse.from_bytes(body, length).outputs[0].as_numpy(), [1, 2, 3])


def test_utils_cloudevent_helpers():
    from modelport.utils.utils import generate_uuid, has_binary_headers, is_structured_cloudevent

    event = {"specversion": "1.0", "id": "1", "source": "s", "type": "t", "time": "2026-01-01T00:00:00Z", "data": {}}
    assert is_structured_cloudevent(event)
    assert not is_structured_cloudevent({"data": {}})
    assert has_binary_headers({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "s", "ce-type": "t"})
    assert not has_binary_headers({"ce-specversion": "1.0"})
    assert len(generate_uuid()) == 36


@pytest.fixture
def model_dir(tmp_path):
    pytest.importorskip("sklearn")
    import joblib
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path / "mnt-models"
    folder.mkdir()
    X = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    joblib.dump(LogisticRegression().fit(X, [0, 1, 0, 1]), folder / "model.joblib")
    return folder


def test_serve_model_dir_and_model_name(served, model_dir):
    import httpx

    # sklearnserver --model_dir /mnt/models --model_name iris
    proc = served("--model_dir", str(model_dir), "--model_name", "iris", "--host", "127.0.0.1",
                  "--http_port", "0", "--grpc_port", "0")
    url = proc.http_url()
    wait_ready(url)
    r = httpx.post(f"{url}/v1/models/iris:predict", json={"instances": [[1.0, 1.0], [0.0, 1.0]]})
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == 2


def test_serve_accepts_kserve_flag_spellings():
    from modelport.cli import build_parser

    args = build_parser().parse_args([
        "serve", "--http_port", "1", "--max_threads", "3", "--enable_docs_url", "false", "--max_asyncio_workers", "2",
        "--enable_latency_logging", "true", "--model_name", "iris", "--model_dir", "/mnt/models",
    ])
    assert (args.http_port, args.inference_threads, args.enable_docs, args.max_asyncio_workers) == (1, 3, False, 2)
    assert (args.enable_latency_logging, args.model_name, args.model_dir) == (True, "iris", "/mnt/models")

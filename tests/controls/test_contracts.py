"""Input contracts: a JSON Schema for V1 payloads, max_rows and max_request_bytes, over REST and gRPC."""

from __future__ import annotations

import json

import grpc
import numpy as np

from ..fixture_models import SumModel
from .conftest import grpc_fails, grpc_infer

SCHEMA = {
    "type": "object",
    "required": ["instances"],
    "properties": {"instances": {"type": "array", "items": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3}}},
}


def model(name="m", **controls):
    m = SumModel(name)
    for key, value in controls.items():
        setattr(m, key, value)
    return m


async def test_v1_payload_must_match_the_schema(both):
    server, http, stub = await both([model(input_schema=SCHEMA)])
    r = await http.post("/v1/models/m:predict", json={"instances": [[1, 2, 3], [1, "a", 3]]})
    assert r.status_code == 400
    assert r.json() == {"error": "Request to model m does not match its input schema at $.instances[1][1]: 'a' is not of type 'number'"}
    r = await http.post("/v1/models/m:predict", json={"instances": [[1, 2, 3, 4]]})
    assert r.status_code == 400
    assert r.json()["error"].startswith("Request to model m does not match its input schema at $.instances[0]: [1, 2, 3, 4] is too long")
    r = await http.post("/v1/models/m:predict", json={"instances": [[1, 2, 3]]})
    assert r.status_code == 200 and r.json() == {"predictions": [6]}


async def test_max_rows(both):
    server, http, stub = await both([model(max_rows=2)])
    r = await http.post("/v1/models/m:predict", json={"instances": [[1], [2], [3]]})
    assert r.status_code == 400 and r.json() == {"error": "Request has 3 rows; model m accepts at most 2 (max_rows)"}
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [3, 1], "data": [1, 2, 3]}]}
    r = await http.post("/v2/models/m/infer", json=body)
    assert r.status_code == 400 and r.json() == {"error": "Request has 3 rows; model m accepts at most 2 (max_rows)"}
    err = await grpc_fails(stub.ModelInfer(grpc_infer("m", np.ones((3, 1), np.float32))), grpc.StatusCode.INVALID_ARGUMENT)
    assert err.details() == "Request has 3 rows; model m accepts at most 2 (max_rows)"
    assert (await http.post("/v1/models/m:predict", json={"instances": [[1], [2]]})).status_code == 200
    assert (await stub.ModelInfer(grpc_infer("m", np.ones((2, 1), np.float32)))).model_name == "m"


async def test_max_request_bytes(both):
    server, http, stub = await both([model(max_request_bytes=32)])
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [3, 3], "data": list(range(9))}]}
    message = "Request of 36 bytes exceeds model m's limit of 32 bytes (max_request_bytes)"
    r = await http.post("/v2/models/m/infer", json=body)
    assert r.status_code == 413 and r.json() == {"error": message}
    err = await grpc_fails(stub.ModelInfer(grpc_infer("m", np.ones((3, 3), np.float32))), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert err.details() == message
    v1 = json.dumps({"instances": [[1, 2, 3]] * 5}).encode()
    r = await http.post("/v1/models/m:predict", content=v1, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json() == {"error": f"Request of {len(v1)} bytes exceeds model m's limit of 32 bytes (max_request_bytes)"}
    assert (await stub.ModelInfer(grpc_infer("m", np.ones((2, 4), np.float32)))).model_name == "m"
    assert (await http.post("/v1/models/m:predict", json={"instances": [[1]]})).status_code == 200


async def test_contracts_from_model_settings(both, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model-settings.json").write_text(json.dumps({
        "name": "m", "implementation": "tests.fixture_models.SumModel", "input_schema": SCHEMA, "max_rows": 1,
    }))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model-settings.json").write_text(json.dumps({
        "name": "broken", "implementation": "tests.fixture_models.SumModel", "input_schema": {"type": "nonsense"},
    }))
    server, http, stub = await both(model_repository=str(tmp_path))
    r = await http.post("/v1/models/m:predict", json={"instances": [[1, 2, 3], [4, 5, 6]]})
    assert r.status_code == 400 and r.json() == {"error": "Request has 2 rows; model m accepts at most 1 (max_rows)"}
    r = await http.post("/v1/models/m:predict", json={"instances": [[1, 2]]})
    assert r.status_code == 400 and "at $.instances[0]" in r.json()["error"]
    assert (await http.post("/v1/models/m:predict", json={"instances": [[1, 2, 3]]})).status_code == 200
    index = {e["name"]: e for e in (await http.post("/v2/repository/index")).json()}
    assert index["broken"]["state"] == "FAILED" and "input_schema is not a valid JSON Schema" in index["broken"]["reason"]

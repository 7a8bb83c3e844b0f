"""The README's Production example turns the controls on as it says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks() -> list:
    text = README.read_text()
    section = text[text.index("## Production") :]
    section = section[: section.index("\n## ", 5)]
    return [json.loads(b) for b in re.findall(r"```json\n(.*?)```", section, re.S)]


async def test_the_production_example_works(serve, tmp_path):
    pytest.importorskip("sklearn")
    settings, keys, model = _blocks()
    (tmp_path / "keys.json").write_text(json.dumps(keys))
    settings["api_keys_path"] = str(tmp_path / "keys.json")
    (tmp_path / "iris").mkdir()
    (tmp_path / "iris" / "model-settings.json").write_text(json.dumps(model))
    server, http = await serve(model_repository=str(tmp_path), **settings)
    body = {"inputs": [{"name": "input-0", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]}
    front = {"authorization": "Bearer s3cr3t-from-a-secret-store"}
    assert (await http.post("/v2/models/iris/infer", json=body)).status_code == 401
    r = await http.post("/v2/models/iris/infer", json=body, headers=front)
    assert r.status_code == 200 and r.headers["x-modelport-cache"] == "miss"
    assert (await http.post("/v2/models/iris/infer", json=body, headers=front)).headers["x-modelport-cache"] == "hit"
    r = await http.post("/v1/models/iris:predict", json={"instances": [[1, 2, 3]]}, headers=front)
    assert r.status_code == 400 and "input schema at $.instances[0]" in r.json()["error"]
    assert (await http.post("/v2/repository/index", headers=front)).status_code == 403
    assert (await http.post("/v2/repository/index", headers={"authorization": "Bearer test"})).status_code == 200  # "ops"
    assert (await http.get("/v2/health/ready")).status_code == 200

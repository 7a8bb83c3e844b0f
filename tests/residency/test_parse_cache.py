"""Many registered models on a real server (REST): the first request for one, the repository index and an
explicit load by name read no other model's settings file (counted, not timed); a changed file is seen."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import file_access

from .conftest import index_of, v2_body

MODEL = "tests.fixture_models.SumModel"


def folder_of(root: Path, count: int) -> Path:
    for i in range(count):
        (root / f"m{i:03d}").mkdir(parents=True)
        (root / f"m{i:03d}" / "model-settings.json").write_text(json.dumps({"name": f"m{i:03d}", "implementation": MODEL}))
    return root


def settings_opened(access: dict) -> list[str]:
    return [p for p in access["open"] if p.endswith("model-settings.json")]


async def test_requests_index_and_load_by_name_read_only_what_changed(serve, tmp_path):
    root = folder_of(tmp_path / "models", 200)
    server, client = await serve(model_repository=str(root), max_loaded_models=5)
    # Trust what was read at once: by default a file changed within 2 s of being read is read again
    # (discovery.RACY_NS), and these were just written. Each change below also changes a file's size.
    server.repository._folder_scanner().settle_ns = 0
    server.dataplane.repository_index()
    with file_access() as access:
        r = await client.post("/v2/models/m150/infer", json=v2_body())  # loaded on demand
        assert r.status_code == 200, r.text
        for _ in range(3):
            r = await client.post("/v2/repository/index", json={})
            assert r.status_code == 200 and len(r.json()) == 200
        r = await client.post("/v2/repository/models/m042/load")
        assert r.status_code == 200, r.text
    assert settings_opened(access) == [] and access["os.scandir"] == []
    assert index_of(server)["m042"]["state"] == "READY"
    # One model's settings changed: its explicit load reads that file, and only it.
    changed = root / "m042" / "model-settings.json"
    changed.write_text(json.dumps({"name": "m042", "implementation": MODEL, "platform": "edited"}))
    with file_access() as access:
        r = await client.post("/v2/repository/models/m042/load")
        assert r.status_code == 200, r.text
    assert settings_opened(access) == [str(changed)]
    assert (await client.get("/v2/models/m042")).json()["platform"] == "edited"

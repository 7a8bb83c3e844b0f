"""The repository reads each settings file once: an index or a load by name among 2,000 models opens
only the files that changed (counted with an audit hook, never timed), and every change is seen."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from pathlib import Path

from modelport.repository.entries import ModelRepository
from tests.helpers import file_access

MODEL = "tests.fixture_models.SumModel"


def settings_text(name: str, platform: str = "plain") -> str:
    return json.dumps({"name": name, "implementation": MODEL, "platform": platform})


def many(root: Path, count: int) -> Path:
    for i in range(count):
        folder = root / f"m{i:04d}"
        folder.mkdir(parents=True)
        (folder / "model-settings.json").write_text(settings_text(folder.name))
    return root


def counting(repo: ModelRepository) -> ModelRepository:
    """A repository that trusts what it read at once. By default a file changed within 2 s of being
    read is read again (discovery.RACY_NS: a second change in the same clock tick would go unseen);
    these tests' files were all just written, and they change none afterwards in the same tick (each
    change below also changes the file's size)."""
    repo._folder_scanner().settle_ns = 0
    return repo


def settings_opened(access: dict) -> list[str]:
    return [p for p in access["open"] if p.endswith("model-settings.json")]


def test_index_of_2000_models_reads_each_settings_file_once(tmp_path):
    root = many(tmp_path / "models", 2000)
    repo = counting(ModelRepository(str(root)))
    with file_access() as first:
        assert len(repo.index()) == 2000
    assert Counter(settings_opened(first)) == {str(root / f"m{i:04d}" / "model-settings.json"): 1 for i in range(2000)}
    with file_access() as again:
        for _ in range(3):
            index = repo.index()
    assert [m["name"] for m in index] == [f"m{i:04d}" for i in range(2000)]
    assert settings_opened(again) == []
    assert again["os.scandir"] == [] and again["os.listdir"] == []  # no folder listed again either


async def test_load_by_name_among_2000_opens_only_that_models_file(tmp_path):
    root = many(tmp_path / "models", 2000)
    repo = counting(ModelRepository(str(root)))
    repo.index()  # what the server read at start-up
    changed = root / "m1234" / "model-settings.json"
    changed.write_text(settings_text("m1234", platform="edited"))
    with file_access() as access:
        assert await repo.load("m1234")
    assert settings_opened(access) == [str(changed)]
    assert repo.get_model("m1234").platform == "edited"
    with file_access() as access:
        assert await repo.load("m0007")  # unchanged: nothing to read
    assert settings_opened(access) == [] and access["os.scandir"] == []
    assert repo.get_model("m0007").platform == "plain"


async def test_a_changed_settings_file_is_seen_even_with_the_same_size_and_mtime(tmp_path):
    root = many(tmp_path / "models", 3)
    repo = ModelRepository(str(root))  # the default: what changed in the last 2 s is read again
    assert await repo.load("m0001")
    path = root / "m0001" / "model-settings.json"
    then = time.time_ns() - 60 * 10**9
    for platform in ("aaaaaa", "bbbbbb", "cccccc"):  # same size, an old mtime put back (as tar and rsync -t do)
        path.write_text(settings_text("m0001", platform))
        os.utime(path, ns=(then, then))
        assert await repo.load("m0001")
        assert repo.get_model("m0001").platform == platform
    for platform in ("dddddd", "eeeeee"):  # written back to back, likely within one clock tick
        path.write_text(settings_text("m0001", platform))
        assert await repo.load("m0001")
        assert repo.get_model("m0001").platform == platform
    # A model's settings changed in memory by the model itself never reach the next load.
    repo.get_model("m0001").settings.platform = "scribbled"
    assert await repo.load("m0001")
    assert repo.get_model("m0001").platform == "eeeeee"


def states(repo: ModelRepository) -> dict:
    return {(m["name"], m.get("version")): m["state"] for m in repo.index()}


async def test_folders_added_and_removed_and_files_broken_are_seen(tmp_path):
    root = many(tmp_path / "models", 3)
    repo = ModelRepository(str(root))
    assert set(states(repo)) == {("m0000", None), ("m0001", None), ("m0002", None)}
    # A model folder added, and one removed.
    (root / "new").mkdir()
    (root / "new" / "model-settings.json").write_text(settings_text("new"))
    shutil.rmtree(root / "m0002")
    assert set(states(repo)) == {("m0000", None), ("m0001", None), ("new", None)}
    assert await repo.load("new")
    # A folder without settings (Triton's layout): versions added and removed are seen.
    (root / "bare" / "1").mkdir(parents=True)
    (root / "bare" / "1" / "model.joblib").write_bytes(b"x")
    assert ("bare", "1") in states(repo)
    (root / "bare" / "2").mkdir()
    (root / "bare" / "2" / "model.joblib").write_bytes(b"x")
    assert {k for k in states(repo) if k[0] == "bare"} == {("bare", "1"), ("bare", "2")}
    shutil.rmtree(root / "bare" / "1")
    assert {k for k in states(repo) if k[0] == "bare"} == {("bare", "2")}
    # A model file's own folder changed (a settings file put inside): it is a settings-file model now.
    (root / "bare" / "2" / "model-settings.json").write_text(settings_text("bare2"))
    assert {k for k in states(repo) if k[0].startswith("bare")} == {("bare2", None)}
    # A settings file broken, then fixed.
    path = root / "m0000" / "model-settings.json"
    path.write_text("{")
    item = next(m for m in repo.index() if m["name"] == "m0000")
    assert item["state"] == "FAILED" and "m0000" in item["reason"]
    path.write_text(settings_text("m0000"))
    assert states(repo)[("m0000", None)] == "UNAVAILABLE"  # known, not loaded
    # A settings file renamed to another model: the old name goes, the new one comes.
    path.write_text(settings_text("renamed"))
    assert ("m0000", None) not in states(repo) and ("renamed", None) in states(repo)

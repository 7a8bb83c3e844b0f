"""Model archives are unpacked within max_archive_size and max_archive_files (security probe F11: a
306 KB zip wrote 301 MB). Each test builds its own bomb in tmp, and checks that nothing was written
and that a normal archive (or model) is served afterwards."""

from __future__ import annotations

import io
import json
import pathlib
import tarfile
import zipfile

import pytest

from modelport import storage
from modelport.errors import StorageError

from ..fixture_models import SumModel

MiB = 1024 * 1024
V2_BODY = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1.0, 2.0, 3.0]}]}


@pytest.fixture
def limits():
    """Small limits for the test, the defaults again afterwards."""
    yield storage.set_archive_limits
    storage.set_archive_limits(storage.DEFAULT_MAX_ARCHIVE_SIZE, storage.DEFAULT_MAX_ARCHIVE_FILES)


def zip_bomb(path: pathlib.Path, size: int) -> pathlib.Path:
    """One member of ``size`` zero bytes, written in chunks (deflate: ~1000:1)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("zeros.bin", "w", force_zip64=True) as out:
        chunk = bytes(MiB)
        for _ in range(size // MiB):
            out.write(chunk)
    return path


def tar_bomb(path: pathlib.Path, size: int) -> pathlib.Path:
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("zeros.bin")
        info.size = size
        tf.addfile(info, io.BytesIO(bytes(size)))
    return path


def many_files(path: pathlib.Path, count: int) -> pathlib.Path:
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(count):
            zf.writestr(f"f/{i}.txt", b"")
    return path


def written(root: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def test_the_defaults_are_a_few_gib_and_tens_of_thousands_of_files():
    assert storage.DEFAULT_MAX_ARCHIVE_SIZE == 8 * 1024**3 and storage.DEFAULT_MAX_ARCHIVE_FILES == 50_000


@pytest.mark.parametrize("build", [zip_bomb, tar_bomb])
def test_a_decompression_bomb_is_refused_before_anything_is_written(tmp_path, limits, build):
    limits(16 * MiB, 1000)
    bomb = build(tmp_path / ("bomb.zip" if build is zip_bomb else "bomb.tar.gz"), 64 * MiB)
    assert bomb.stat().st_size < MiB  # the attack: a small file
    cache = tmp_path / "cache"
    with pytest.raises(StorageError) as info:
        storage.fetch(str(bomb), cache_dir=cache)
    message = str(info.value)
    assert bomb.name in message and "max_archive_size" in message and "16.0 MiB" in message, message
    assert written(cache) < MiB  # nothing unpacked (the probe: 301 MB)
    # A normal archive under the same limits unpacks.
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("model.bin", b"weights")
    assert (storage.fetch(str(good), cache_dir=cache) / "model.bin").read_bytes() == b"weights"


def test_too_many_members_are_refused(tmp_path, limits):
    limits(1024 * MiB, 200)
    with pytest.raises(StorageError, match=r"many\.zip.*more than 200 members \(max_archive_files\)"):
        storage.fetch(str(many_files(tmp_path / "many.zip", 201)), cache_dir=tmp_path / "cache")
    tar = tmp_path / "many.tar"
    with tarfile.open(tar, "w") as tf:
        for i in range(300):
            tf.addfile(tarfile.TarInfo(f"f/{i}.txt"), io.BytesIO(b""))
    with pytest.raises(StorageError, match="more than 200 members"):
        storage.fetch(str(tar), cache_dir=tmp_path / "cache")
    assert storage.fetch(str(many_files(tmp_path / "ok.zip", 200)), cache_dir=tmp_path / "cache").is_dir()


async def test_a_model_whose_archive_is_a_bomb_fails_and_the_server_serves_on(serve, tmp_path, monkeypatch, limits):
    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "cache"))
    models = tmp_path / "models"
    (models / "bomb").mkdir(parents=True)
    zip_bomb(models / "bomb" / "model.zip", 64 * MiB)
    (models / "bomb" / "model-settings.json").write_text(json.dumps(
        {"name": "bomb", "implementation": "sklearn", "parameters": {"uri": "./model.zip"}}))
    server, client = await serve([SumModel("sum")], model_repository=str(models), max_archive_size=16 * MiB)
    index = {m["name"]: m for m in (await client.post("/v2/repository/index", json={})).json()}
    reason = index["bomb"]["reason"]
    assert index["bomb"]["state"] == "FAILED" and "model.zip" in reason and "max_archive_size" in reason, reason
    assert str(tmp_path) not in reason  # relative to the models folder
    assert written(tmp_path / "cache") < MiB
    r = await client.post("/v2/models/sum/infer", json=V2_BODY)
    assert r.status_code == 200, r.text


def test_bad_limits_are_settings_errors():
    from modelport.settings import SettingsError

    from ..helpers import make_server

    with pytest.raises(SettingsError, match="max_archive_files: must be at least 1"):
        make_server(max_archive_files=0)

"""modelport.storage without any network or optional extra: local paths, file://, archives, the cache."""

from __future__ import annotations

import asyncio
import io
import os
import pathlib
import sys
import tarfile
import zipfile

import pytest

from modelport import storage
from modelport.errors import ErrorCode, ModelportError, StorageError
from modelport.storage import afetch, cache_key, fetch


def _dirs(root: pathlib.Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []


def _make_tar(path: pathlib.Path, files: dict[str, bytes], mode: str = "w:gz") -> pathlib.Path:
    with tarfile.open(path, mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _make_zip(path: pathlib.Path, files: dict[str, bytes]) -> pathlib.Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


@pytest.fixture
def cache(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "cache"


# -------------------------------------------------------------------------------- local paths


def test_local_dir_is_returned_as_is(tmp_path, cache):
    model = tmp_path / "my model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"w")
    assert fetch(str(model), cache_dir=cache) == model
    assert not cache.exists()  # nothing copied


def test_local_dir_named_like_an_archive_is_returned_as_is(tmp_path, cache):
    model = tmp_path / "model.zip"
    model.mkdir()
    assert fetch(str(model), cache_dir=cache) == model


def test_local_file_is_returned_as_is(tmp_path, cache):
    f = tmp_path / "model.joblib"
    f.write_bytes(b"m")
    assert fetch(str(f), cache_dir=cache) == f
    assert not cache.exists()


def test_home_relative_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "m.bin").write_bytes(b"m")
    assert fetch("~/m.bin") == tmp_path / "m.bin"


@pytest.mark.parametrize("form", ["file://{}", "file://localhost{}", "FILE://{}"])
def test_file_uri(tmp_path, cache, form):
    model = tmp_path / "with space"
    model.mkdir()
    uri = form.format(model.as_uri()[len("file://") :])
    assert "%20" in uri
    assert fetch(uri, cache_dir=cache) == model


def test_file_uri_naming_another_host_is_rejected(cache):
    with pytest.raises(StorageError, match="not host 'otherhost'"):
        fetch("file://otherhost/srv/model", cache_dir=cache)


def test_missing_path_is_a_clear_error(tmp_path, cache):
    missing = tmp_path / "nope" / "model.joblib"
    with pytest.raises(StorageError) as info:
        fetch(str(missing), cache_dir=cache)
    assert str(missing) in str(info.value) and "does not exist" in str(info.value)
    with pytest.raises(StorageError, match="does not exist"):
        fetch(missing.as_uri(), cache_dir=cache)


@pytest.mark.parametrize("uri", ["ftp://host/model.bin", "hdfs://nn/models/x", "foo+bar://x"])
def test_unsupported_scheme_is_a_clear_error(uri, cache):
    with pytest.raises(StorageError) as info:
        fetch(uri, cache_dir=cache)
    msg = str(info.value)
    assert "Unsupported URI scheme" in msg and uri in msg
    assert "s3://" in msg and "file://" in msg  # says what is supported


@pytest.mark.parametrize("uri", ["", "   "])
def test_empty_uri(uri, cache):
    with pytest.raises(StorageError, match="Invalid model URI"):
        fetch(uri, cache_dir=cache)


def test_storage_error_is_unavailable():
    assert issubclass(StorageError, ModelportError)
    assert StorageError.code is ErrorCode.UNAVAILABLE


def test_missing_extra_names_the_pip_install(monkeypatch, cache):
    # Simulate an environment without the azure extra (whether or not adlfs is installed here).
    monkeypatch.setitem(sys.modules, "adlfs", None)
    with pytest.raises(StorageError) as info:
        fetch("az://container/model.joblib", cache_dir=cache)
    assert "pip install 'modelport[azure]'" in str(info.value)
    assert isinstance(info.value.__cause__, ImportError)
    assert _dirs(cache) == []  # the failed attempt left nothing behind


# -------------------------------------------------------------------------------- cache keys and dirs


def test_cache_key():
    k = cache_key("s3://bucket/models/iris.joblib")
    assert k == cache_key("s3://bucket/models/iris.joblib", None)
    assert k.startswith("iris.joblib-")
    assert cache_key("s3://b/m/") == cache_key("s3://b/m")
    assert cache_key("s3://b/m", "1") != cache_key("s3://b/m", "2") != cache_key("s3://b/m")
    assert cache_key("s3://b/m", "v1").startswith("m@v1-")
    for uri in ["https://h/a?b=c&d=/..", "s3://b/" + "x" * 300, "gs://b/"]:
        key = cache_key(uri, "../v")
        assert "/" not in key and not key.startswith(".") and len(key) < 80


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("MODELPORT_MODEL_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert storage.default_cache_dir() == tmp_path / ".cache" / "modelport" / "models"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert storage.default_cache_dir() == tmp_path / "xdg" / "modelport" / "models"
    monkeypatch.setenv("MODELPORT_MODEL_CACHE", str(tmp_path / "env"))
    assert storage.default_cache_dir() == tmp_path / "env"


def test_env_cache_dir_is_used(monkeypatch, tmp_path):
    archive = _make_tar(tmp_path / "m.tgz", {"w.bin": b"w"})
    monkeypatch.setenv("MODELPORT_MODEL_CACHE", str(tmp_path / "env-cache"))
    out = fetch(str(archive))
    assert out.is_relative_to(tmp_path / "env-cache")
    # the argument wins over the environment
    assert fetch(str(archive), cache_dir=tmp_path / "arg").is_relative_to(tmp_path / "arg")


def test_unwritable_cache_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    archive = _make_tar(tmp_path / "m.tgz", {"w.bin": b"w"})
    with pytest.raises(StorageError, match="MODELPORT_MODEL_CACHE"):
        fetch(str(archive), cache_dir=blocker / "cache")


# -------------------------------------------------------------------------------- local archives


@pytest.mark.parametrize("name,mode", [("m.tar.gz", "w:gz"), ("m.tgz", "w:gz"), ("m.tar", "w"), ("m.tar.xz", "w:xz")])
def test_local_tar_is_unpacked_into_the_cache(tmp_path, cache, name, mode):
    archive = _make_tar(tmp_path / name, {"model.bin": b"abc", "sub/cfg.json": b"{}"}, mode)
    out = fetch(str(archive), cache_dir=cache)
    assert out.is_dir() and out.is_relative_to(cache)
    assert (out / "model.bin").read_bytes() == b"abc"
    assert (out / "sub" / "cfg.json").read_bytes() == b"{}"
    assert not (out / name).exists()  # the archive itself is not kept
    # A second fetch reuses the entry; a replaced archive is unpacked anew.
    assert fetch(archive.as_uri(), cache_dir=cache) == out
    marker = out / "model.bin"
    assert marker.stat().st_ino == (fetch(str(archive), cache_dir=cache) / "model.bin").stat().st_ino
    _make_tar(archive, {"model.bin": b"new and longer"}, mode)
    out2 = fetch(str(archive), cache_dir=cache)
    assert out2 != out and (out2 / "model.bin").read_bytes() == b"new and longer"


def test_local_zip_is_unpacked(tmp_path, cache):
    archive = _make_zip(tmp_path / "m.zip", {"model.bin": b"z", "d/x.txt": b"x"})
    out = fetch(str(archive), cache_dir=cache)
    assert (out / "model.bin").read_bytes() == b"z" and (out / "d" / "x.txt").read_bytes() == b"x"


def test_version_is_part_of_the_key(tmp_path, cache):
    archive = _make_tar(tmp_path / "m.tgz", {"w.bin": b"w"})
    a = fetch(str(archive), cache_dir=cache, version="1")
    b = fetch(str(archive), cache_dir=cache, version="2")
    assert a != b and (a / "w.bin").exists() and (b / "w.bin").exists()


@pytest.mark.parametrize("member", ["../evil.txt", "a/../../evil.txt", "/tmp/evil-abs.txt"])
def test_tar_member_escaping_is_rejected(tmp_path, cache, member):
    archive = _make_tar(tmp_path / "evil.tar.gz", {"ok.txt": b"ok", member: b"pwned"})
    with pytest.raises(StorageError, match="outside"):
        fetch(str(archive), cache_dir=cache)
    assert not (tmp_path / "evil.txt").exists() and not (cache / "evil.txt").exists()
    assert _dirs(cache) == []


@pytest.mark.parametrize("target", ["../../../etc/passwd", "/etc/passwd"])
def test_tar_symlink_escaping_is_rejected(tmp_path, cache, target):
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tf:
        info = tarfile.TarInfo("sneaky")
        info.type = tarfile.SYMTYPE
        info.linkname = target
        tf.addfile(info)
    with pytest.raises(StorageError, match="outside"):
        fetch(str(archive), cache_dir=cache)
    assert _dirs(cache) == []


def test_tar_device_member_is_rejected(tmp_path, cache):
    archive = tmp_path / "dev.tar"
    with tarfile.open(archive, "w") as tf:
        info = tarfile.TarInfo("fifo")
        info.type = tarfile.FIFOTYPE
        tf.addfile(info)
    with pytest.raises(StorageError, match="not a regular file"):
        fetch(str(archive), cache_dir=cache)


def test_tar_internal_symlink_is_allowed(tmp_path, cache):
    archive = tmp_path / "ok.tar"
    with tarfile.open(archive, "w") as tf:
        data = tarfile.TarInfo("real.bin")
        data.size = 1
        tf.addfile(data, io.BytesIO(b"r"))
        link = tarfile.TarInfo("alias.bin")
        link.type = tarfile.SYMTYPE
        link.linkname = "real.bin"
        tf.addfile(link)
    out = fetch(str(archive), cache_dir=cache)
    assert (out / "alias.bin").read_bytes() == b"r"


@pytest.mark.parametrize("member", ["../evil.txt", "/abs-evil.txt", "a/../../evil.txt"])
def test_zip_member_escaping_is_rejected(tmp_path, cache, member):
    archive = _make_zip(tmp_path / "evil.zip", {"ok.txt": b"ok", member: b"pwned"})
    with pytest.raises(StorageError, match="outside"):
        fetch(str(archive), cache_dir=cache)
    assert _dirs(cache) == []


@pytest.mark.parametrize("name", ["bad.tar.gz", "bad.zip"])
def test_corrupt_archive_is_a_clear_error_and_leaves_nothing(tmp_path, cache, name):
    archive = tmp_path / name
    archive.write_bytes(b"this is not an archive at all" * 10)
    with pytest.raises(StorageError, match="corrupt or truncated") as info:
        fetch(str(archive), cache_dir=cache)
    assert name in str(info.value)
    assert _dirs(cache) == []


def test_stale_temp_dir_of_a_killed_download_is_removed(tmp_path, cache):
    archive = _make_tar(tmp_path / "m.tgz", {"w.bin": b"w"})
    out = fetch(str(archive), cache_dir=cache)
    key = out.parent.name
    # Pretend a process died mid-download of a new version, and an entry was damaged.
    _make_tar(archive, {"w.bin": b"w2"})
    st = archive.stat()
    new_key = storage._key_for(f"file://{archive.resolve()}#{st.st_size}-{st.st_mtime_ns}", archive.name, None)
    stale = cache / f".tmp-{new_key}-dead"
    stale.mkdir()
    (stale / "partial").write_bytes(b"half")
    out2 = fetch(str(archive), cache_dir=cache)
    assert not stale.exists()
    assert (out2 / "w.bin").read_bytes() == b"w2"
    assert sorted(_dirs(cache)) == sorted([key, new_key])


def test_entry_without_metadata_is_replaced(tmp_path, cache):
    archive = _make_tar(tmp_path / "m.tgz", {"w.bin": b"w"})
    out = fetch(str(archive), cache_dir=cache)
    entry = out.parent
    (entry / "entry.json").unlink()
    again = fetch(str(archive), cache_dir=cache)
    assert again == out and (again / "w.bin").read_bytes() == b"w"


def test_afetch(tmp_path, cache):
    archive = _make_zip(tmp_path / "m.zip", {"w.bin": b"w"})

    async def main():
        return await asyncio.gather(*(afetch(str(archive), cache_dir=cache) for _ in range(4)))

    outs = asyncio.run(main())
    assert len(set(outs)) == 1 and (outs[0] / "w.bin").read_bytes() == b"w"
    assert [d for d in os.listdir(cache) if d.startswith(".tmp-")] == []

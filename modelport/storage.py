"""Model URIs → local files.

:func:`fetch` turns a model URI into a local path:

* a local path or ``file://`` URI is returned as it is (no copy), unless it names an archive, which
  is unpacked into the cache;
* ``http(s)://``, ``s3://``, ``gs://``, ``az://`` / ``abfs(s)://`` go through fsspec (optional extras
  ``storage``, ``s3``, ``gcs``, ``azure``, imported only when such a URI is fetched). A single object
  is downloaded into its own cache entry and the file's path returned; an object-store prefix is
  copied recursively and the directory returned; a ``.tar.gz``/``.tgz``/``.tar``/``.zip`` archive is
  unpacked (members that would land outside the target directory are rejected) and the directory
  returned.

Unpacking is bounded: an archive whose members add up to more than ``max_archive_size`` bytes, or
that holds more than ``max_archive_files`` members, is refused before anything is written (a
decompression bomb: a few hundred KB of zip can hold hundreds of GB of zeros). The server sets both
from its settings (:func:`set_archive_limits`); the sizes checked are the ones the archive declares,
which zipfile and tarfile never write past.

Cache layout, under the cache root (argument, else ``$MODELPORT_MODEL_CACHE``, else
``~/.cache/modelport/models``)::

    <key>/entry.json      what was fetched (uri, version, and the path to return, relative)
    <key>/model/...       the model itself
    <key>.lock            fcntl lock serialising downloads of <key> across processes
    .tmp-<key>-XXXX/      a download in progress (renamed to <key> when complete)

An entry is keyed by URI and ``version`` only (see :func:`cache_key`): once present it is used without
asking the remote again, so a restart does not download again; pass a new ``version`` to fetch anew.
A download is written into a temporary directory inside the cache root and renamed into place, so a
failed or interrupted download leaves no half-written model and a later call simply retries.
Concurrent fetches of one URI download once: a per-entry thread lock within the process, and an
``fcntl.flock`` on ``<key>.lock`` across processes.

Every failure is raised as :class:`modelport.errors.StorageError`, with the URI and what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import pathlib
import re
import shutil
import socket
import tarfile
import tempfile
import threading
import urllib.parse
import urllib.request
import weakref
import zipfile
from collections.abc import Iterator
from typing import Any

from modelport._optional import import_optional
from modelport.errors import StorageError

try:  # POSIX only; elsewhere downloads are serialised within a process only.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["afetch", "cache_key", "default_cache_dir", "fetch", "set_archive_limits"]

CACHE_ENV = "MODELPORT_MODEL_CACHE"

# scheme -> (fsspec protocol, extra, modules the extra provides)
_REMOTE: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "http": ("http", "storage", ("fsspec", "aiohttp")),
    "https": ("https", "storage", ("fsspec", "aiohttp")),
    "s3": ("s3", "s3", ("fsspec", "s3fs")),
    "gs": ("gs", "gcs", ("fsspec", "gcsfs")),
    "gcs": ("gs", "gcs", ("fsspec", "gcsfs")),
    "az": ("az", "azure", ("fsspec", "adlfs")),
    "abfs": ("abfs", "azure", ("fsspec", "adlfs")),
    "abfss": ("abfs", "azure", ("fsspec", "adlfs")),
}
_SUPPORTED = "local paths, file://, " + ", ".join(f"{s}://" for s in _REMOTE)

_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_ZIP_SUFFIXES = (".zip",)

# Limits on what one archive may unpack to (ServerSettings max_archive_size / max_archive_files).
DEFAULT_MAX_ARCHIVE_SIZE = 8 * 1024**3
DEFAULT_MAX_ARCHIVE_FILES = 50_000
_archive_limits = (DEFAULT_MAX_ARCHIVE_SIZE, DEFAULT_MAX_ARCHIVE_FILES)


def set_archive_limits(max_bytes: int, max_files: int) -> None:
    """The most bytes and members one archive may unpack to (for every later fetch in this process)."""
    global _archive_limits
    _archive_limits = (int(max_bytes), int(max_files))


_ENTRY_FILE = "entry.json"
_MODEL_DIR = "model"

# One lock per cache entry for the threads of this process (flock alone would also serialise them,
# but not on platforms without fcntl). Entries vanish once no thread holds their lock.
_thread_locks: weakref.WeakValueDictionary[str, threading.Lock] = weakref.WeakValueDictionary()
_thread_locks_guard = threading.Lock()


# --------------------------------------------------------------------------------------------------
# public API


def default_cache_dir() -> pathlib.Path:
    """``$MODELPORT_MODEL_CACHE``, else ``$XDG_CACHE_HOME/modelport/models`` (``~/.cache`` default)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return pathlib.Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "modelport" / "models"


def cache_key(uri: str, version: str | None = None) -> str:
    """The cache entry name for ``uri`` at ``version``: readable, filesystem-safe and unique.

    ``s3://b/m/`` and ``s3://b/m`` share a key; different versions never do.
    """
    norm = uri.strip().rstrip("/") or uri
    digest = hashlib.sha256(f"{norm}\0{version or ''}".encode()).hexdigest()[:16]
    name = norm.rsplit("/", 1)[-1] + (f"@{version}" if version else "")
    slug = re.sub(r"[^A-Za-z0-9._@-]+", "_", name).strip("._")[:48] or "model"
    return f"{slug}-{digest}"


def fetch(
    uri: str,
    *,
    version: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> pathlib.Path:
    """Return a local path holding the model at ``uri``, downloading it into the cache if needed.

    ``version`` is part of the cache key (use it to force a fresh download of a changed model).
    ``storage_options`` go to the fsspec filesystem (e.g. ``{"endpoint_url": ..., "key": ...,
    "secret": ...}`` for S3, ``{"anon": True}`` for public buckets, ``{"headers": ...}`` for HTTP).
    For ``s3://`` the endpoint defaults to ``$AWS_ENDPOINT_URL_S3``, ``$AWS_ENDPOINT_URL`` or
    ``$S3_ENDPOINT`` (S3-compatible stores); credentials come from the usual AWS variables/profiles.

    Blocks while downloading: from async code use :func:`afetch`. Raises :class:`StorageError`.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise StorageError(f"Invalid model URI {uri!r}: expected a path or URI ({_SUPPORTED})")
    uri = uri.strip()
    scheme = _scheme(uri)
    if scheme is None:
        local = _local_path(uri)
        if not (_is_archive(local.name) and local.is_file()):
            return local
        # An archive is not a model: unpack it into the cache. Its size and mtime join the key so
        # that a replaced archive is unpacked again.
        st = local.stat()
        ident = f"file://{local.resolve()}#{st.st_size}-{st.st_mtime_ns}"
        key = _key_for(ident, local.name, version)
        return _cached(uri, version, key, cache_dir, lambda tmp: _unpack(local, tmp / _MODEL_DIR))
    if scheme not in _REMOTE:
        raise StorageError(f"Unsupported URI scheme {scheme!r} in {uri!r}; supported: {_SUPPORTED}")
    key = cache_key(uri, version)
    return _cached(uri, version, key, cache_dir, lambda tmp: _download(uri, scheme, storage_options, tmp))


async def afetch(
    uri: str,
    *,
    version: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> pathlib.Path:
    """:func:`fetch` in a worker thread, so the event loop never blocks on a download."""
    return await asyncio.to_thread(fetch, uri, version=version, cache_dir=cache_dir, storage_options=storage_options)


# --------------------------------------------------------------------------------------------------
# URIs


def _scheme(uri: str) -> str | None:
    """The URI's scheme, lower-cased, or None for a local path (``file://`` counts as local)."""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", uri)
    if match is None or len(match.group(1)) == 1:  # no scheme, or a Windows drive letter
        return None
    scheme = match.group(1).lower()
    return None if scheme == "file" else scheme


def _local_path(uri: str) -> pathlib.Path:
    if uri[:5].lower() == "file:":
        parsed = urllib.parse.urlsplit(uri)
        if parsed.netloc not in ("", "localhost"):
            raise StorageError(
                f"Cannot fetch {uri!r}: file:// URIs must name a local path (file:///path), not host {parsed.netloc!r}"
            )
        path = pathlib.Path(urllib.request.url2pathname(parsed.path))
    else:
        path = pathlib.Path(uri).expanduser()
    if not path.exists():
        raise StorageError(f"Model path {str(path)!r} (from {uri!r}) does not exist")
    return path


def _key_for(ident: str, name: str, version: str | None) -> str:
    digest = cache_key(ident, version).rsplit("-", 1)[1]
    return cache_key(name, version).rsplit("-", 1)[0] + "-" + digest


def _is_archive(name: str) -> bool:
    return name.lower().endswith(_TAR_SUFFIXES + _ZIP_SUFFIXES)


# --------------------------------------------------------------------------------------------------
# the cache


def _cached(uri, version, key, cache_dir, produce) -> pathlib.Path:
    """Return the entry ``key``, creating it with ``produce(tmpdir) -> relative path`` if absent."""
    root = pathlib.Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    entry = root / key
    found = _lookup(entry)
    if found is not None:
        return found
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"Cannot create the model cache directory {str(root)!r} for {uri!r}: {exc}; "
            f"set {CACHE_ENV} or pass cache_dir to a writable directory"
        ) from exc
    with _thread_lock(str(entry)), _file_lock(root / f"{key}.lock", uri):
        found = _lookup(entry)  # another thread or process may have finished it meanwhile
        if found is not None:
            return found
        # Leftovers of an interrupted download of this entry (we hold its lock, so none is live).
        for stale in root.glob(f".tmp-{key}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if entry.exists():  # not an entry we wrote (no entry.json): replace it
            shutil.rmtree(entry, ignore_errors=True)
        tmp: pathlib.Path | None = None
        try:
            tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=root))
            rel = produce(tmp)
            meta = {"uri": uri, "version": version, "path": rel}
            (tmp / _ENTRY_FILE).write_text(json.dumps(meta, indent=1) + "\n")
            os.rename(tmp, entry)  # the commit point: the entry appears whole or not at all
        except StorageError:
            raise
        except Exception as exc:  # the one boundary where third-party errors are translated
            raise StorageError(_explain(uri, exc)) from exc
        finally:
            if tmp is not None and tmp.exists():  # failed or interrupted: leave nothing behind
                shutil.rmtree(tmp, ignore_errors=True)
    found = _lookup(entry)
    if found is None:  # pragma: no cover - only if someone deletes the entry under our feet
        raise StorageError(f"Cache entry {str(entry)!r} for {uri!r} vanished after download")
    return found


def _lookup(entry: pathlib.Path) -> pathlib.Path | None:
    try:
        rel = json.loads((entry / _ENTRY_FILE).read_text())["path"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    path = entry / rel
    return path if path.exists() else None


@contextlib.contextmanager
def _thread_lock(name: str) -> Iterator[None]:
    with _thread_locks_guard:
        lock = _thread_locks.get(name)
        if lock is None:
            lock = _thread_locks[name] = threading.Lock()
    with lock:
        yield


@contextlib.contextmanager
def _file_lock(path: pathlib.Path, uri: str) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover
        yield
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(f"Cannot create cache lock {str(path)!r} for {uri!r}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


# --------------------------------------------------------------------------------------------------
# downloading and unpacking (errors from here are translated by _cached)


def _download(uri: str, scheme: str, storage_options: dict[str, Any] | None, tmp: pathlib.Path) -> str:
    """Copy ``uri`` under ``tmp``; return the path to hand back, relative to ``tmp``."""
    protocol, extra, modules = _REMOTE[scheme]
    for module in modules:
        import_optional(module, extra)
    import fsspec

    cls = fsspec.get_filesystem_class(protocol)
    # Options the URL implies (e.g. the Azure account in abfs://container@account...), then the
    # caller's. A fresh instance each time: fsspec's instance cache would keep credentials read
    # from the environment on first use.
    options = {**cls._get_kwargs_from_urls(uri), **(storage_options or {})}
    if protocol == "s3":
        _default_s3_endpoint(options)
    fs = cls(skip_instance_cache=True, **options)
    path = uri if protocol in ("http", "https") else cls._strip_protocol(uri)
    model = tmp / _MODEL_DIR
    model.mkdir()

    if protocol in ("http", "https"):
        is_dir = False  # HTTP has no directories (fsspec would scrape HTML links)
    else:
        is_dir = fs.info(path)["type"] == "directory"  # FileNotFoundError if absent

    if is_dir:
        prefix = path.rstrip("/") + "/"
        remote = [p for p in fs.find(prefix) if not p.endswith("/")]
        if not remote:
            raise FileNotFoundError(f"no objects under {uri}")
        local = []
        for rpath in remote:
            rel = rpath[len(prefix) :] if rpath.startswith(prefix) else rpath.rsplit("/", 1)[-1]
            target = _contained(model, rel, uri)
            target.parent.mkdir(parents=True, exist_ok=True)
            local.append(str(target))
        fs.get(remote, local)
        return _MODEL_DIR

    name = _remote_name(path) or "model"
    if _is_archive(name):
        archive = tmp / name
        fs.get_file(path, str(archive))
        _unpack(archive, model, uri)
        archive.unlink()
        return _MODEL_DIR
    fs.get_file(path, str(model / name))
    return f"{_MODEL_DIR}/{name}"


def _remote_name(path: str) -> str:
    name = urllib.parse.urlsplit(path).path.rstrip("/").rsplit("/", 1)[-1]
    return urllib.parse.unquote(name)


def _default_s3_endpoint(options: dict[str, Any]) -> None:
    """Fill ``endpoint_url`` from the environment unless given (S3-compatible stores)."""
    client_kwargs = options.get("client_kwargs") or {}
    if options.get("endpoint_url") or client_kwargs.get("endpoint_url"):
        return
    for var in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "S3_ENDPOINT"):
        endpoint = os.environ.get(var, "").strip()
        if endpoint:
            break
    else:
        return
    if "://" not in endpoint:  # S3_ENDPOINT is often host[:port]; S3_USE_HTTPS=0 means http
        use_https = os.environ.get("S3_USE_HTTPS", "1").strip().lower() not in ("0", "false", "no")
        endpoint = ("https://" if use_https else "http://") + endpoint
    options["endpoint_url"] = endpoint


def _contained(root: pathlib.Path, member: str, uri: str) -> pathlib.Path:
    """``root / member``, refusing members that are absolute or climb out of ``root``."""
    target = (root / member).resolve()
    if pathlib.PurePosixPath(member).is_absolute() or not target.is_relative_to(root.resolve()):
        raise StorageError(f"Refusing {uri!r}: member {member!r} would be written outside {root}")
    return target


def _unpack(archive: pathlib.Path, dest: pathlib.Path, label: str | None = None) -> str:
    """Unpack a tar or zip archive into ``dest``, rejecting members that escape it and archives
    over the size and member-count limits. ``label`` names the archive in errors (its URI)."""
    label = label or str(archive)
    max_bytes, max_files = _archive_limits
    dest.mkdir(parents=True, exist_ok=True)
    name = archive.name.lower()
    if name.endswith(_ZIP_SUFFIXES):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            _check_limits(label, len(infos), sum(i.file_size for i in infos), max_bytes, max_files)
            for info in infos:
                _contained(dest, info.filename, label)
            zf.extractall(dest)
        return _MODEL_DIR
    with tarfile.open(archive) as tf:
        members, total = [], 0
        for member in tf:  # one at a time: a tar of a million empty members is refused at max_files + 1
            members.append(member)
            total += member.size if member.isfile() else 0
            _check_limits(label, len(members), total, max_bytes, max_files)
            _contained(dest, member.name, label)
            if member.issym() or member.islnk():
                base = (dest / member.name).parent if member.issym() else dest
                link = (base / member.linkname).resolve()
                if member.linkname.startswith("/") or not link.is_relative_to(dest.resolve()):
                    raise StorageError(
                        f"Refusing archive {label!r}: link {member.name!r} -> "
                        f"{member.linkname!r} points outside the model directory"
                    )
            elif not (member.isfile() or member.isdir()):
                raise StorageError(
                    f"Refusing archive {label!r}: member {member.name!r} is not a regular "
                    "file, directory or link"
                )
        if hasattr(tarfile, "data_filter"):
            tf.extractall(dest, members=members, filter="data")
        else:  # pragma: no cover - Python without PEP 706; members were checked above
            tf.extractall(dest, members=members)
    return _MODEL_DIR


def _check_limits(label: str, count: int, total: int, max_bytes: int, max_files: int) -> None:
    if count > max_files:
        raise StorageError(f"Refusing archive {label!r}: it holds more than {max_files} members "
                           f"(max_archive_files); raise the setting if the model really needs them")
    if total > max_bytes:
        raise StorageError(f"Refusing archive {label!r}: it unpacks to more than {_bytes(max_bytes)} "
                           f"(max_archive_size; {_bytes(total)} so far); raise the setting if the model is that large")


def _bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:g} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


# --------------------------------------------------------------------------------------------------
# error messages


def _explain(uri: str, exc: BaseException) -> str:
    """A message a user can act on for ``exc``, raised while fetching ``uri``."""
    names = {klass.__name__ for klass in type(exc).__mro__}
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    scheme = _scheme(uri) or "file"
    status = getattr(exc, "status", None) or getattr(exc, "status_code", None)  # aiohttp / azure
    if isinstance(exc, ImportError):
        return f"Cannot fetch {uri!r}: {exc}"
    if isinstance(exc, FileNotFoundError) or status == 404:
        return f"Model not found at {uri!r}: no such object or path ({detail})"
    if "NoCredentialsError" in names or "PartialCredentialsError" in names:
        return (
            f"No credentials to fetch {uri!r}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE), or pass storage_options={'anon': True} for a public bucket"
        )
    auth_names = {"ClientAuthenticationError", "RefreshError", "DefaultCredentialsError"}
    if isinstance(exc, PermissionError) or status in (401, 403) or names & auth_names:
        hint = _CREDENTIALS_HINT.get(scheme, "check the credentials in storage_options")
        return f"Access denied fetching {uri!r}: {hint} ({detail})"
    if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)) or names & {
        "EndpointConnectionError",
        "ClientConnectorError",
        "ConnectTimeoutError",
        "ServerDisconnectedError",
        "ClientConnectionError",
        "ServiceRequestError",
    }:
        endpoint = " (and the endpoint: AWS_ENDPOINT_URL / S3_ENDPOINT)" if scheme == "s3" else ""
        return f"Cannot reach the host for {uri!r}: check the URL{endpoint} and the network ({detail})"
    if isinstance(status, int):
        return f"Server answered HTTP {status} for {uri!r} ({detail})"
    if isinstance(exc, (tarfile.TarError, zipfile.BadZipFile, EOFError)):
        return f"Cannot unpack the archive at {uri!r}: it is corrupt or truncated ({detail})"
    if "ClientPayloadError" in names:
        return f"Download of {uri!r} was cut off before it completed ({detail})"
    hint = _CREDENTIALS_HINT.get(scheme) if scheme in ("az", "abfs", "abfss") else None
    return f"Cannot fetch {uri!r}: {detail}" + (f" ({hint})" if hint else "")


_AZURE_HINT = (
    "set AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_TOKEN or "
    "AZURE_STORAGE_CONNECTION_STRING (or pass them in storage_options), or name the account in "
    "the URI: abfs://container@account.dfs.core.windows.net/path"
)
_GCS_HINT = "check GOOGLE_APPLICATION_CREDENTIALS (or storage_options={'token': ...})"
_CREDENTIALS_HINT = {
    "s3": "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE (or storage_options "
    "key/secret) and the bucket policy",
    "gs": _GCS_HINT,
    "gcs": _GCS_HINT,
    "az": _AZURE_HINT,
    "abfs": _AZURE_HINT,
    "abfss": _AZURE_HINT,
}

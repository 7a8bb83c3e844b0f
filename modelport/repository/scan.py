"""What a model folder serves: its model-settings.json files, and model files without one.

A sub-folder with no model-settings.json anywhere inside is read as Triton reads a repository whose
configs it completes: the sub-folder's name is the model's name, the runtime is detected from its files
(``iris/model.onnx``), and numbered sub-folders are versions (``iris/1/model.onnx``). A folder that
holds only a model file is served under the folder's own name. Whatever yields no model is reported
with the reason, so the server can log it and say it in its readiness answer.

The repository reads the folder on every index and every load by name, so a ``FolderScanner`` keeps
what it read: each settings file's parse keyed by its stat (mtime, ctime, size, inode), each directory's
listing keyed by its mtime and ctime (an entry added, removed or renamed changes them), each file-less
model's detected runtime keyed by its folder's listing and model-file stats. A scan then costs one
``stat`` per directory and settings file, and opens only what changed. A file or folder changed within
``settle_ns`` (``RACY_NS``) of being read is read again next time: the filesystem's clock is coarse, and a
second change in the same tick would otherwise go unseen (git's "racy clean" rule). The ctime counts:
nobody can set it, so a change that puts an old mtime back (tar, ``rsync -t``) is seen too.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..settings import ModelParameters, ModelSettings, SettingsError, load_model_settings

_SETTINGS = "model-settings.json"
# Filesystems stamp times from a coarse clock (a few ms on Linux, 2 s on FAT): trust a cached read only
# of a file whose last change (mtime and ctime) was this much older than the read.
RACY_NS = 2_000_000_000
# Files whose contents (not only names) runtime detection reads: XGBoost JSON, LightGBM text.
_HEAD_SUFFIXES = (".json", ".txt", ".model")


@dataclass
class FolderContents:
    specs: list[ModelSettings] = field(default_factory=list)
    # One line per folder (or file) that looks like a model but yields none, saying why.
    problems: list[str] = field(default_factory=list)
    # Model (folder) name -> why its model-settings.json cannot be used.
    broken: dict[str, str] = field(default_factory=dict)


@dataclass
class _Listing:
    """One directory as last listed."""

    key: tuple[int, ...]  # what its stat said when listed
    trusted: bool
    # What a recursive search for model-settings.json visits here, in sorted-path order: (path, is the
    # settings file). Symlinked directories are not descended into (as pathlib's rglob).
    walk: list[tuple[Path, bool]]
    dirs: list[Path]  # sub-folders, symlinks followed, sorted
    heads: list[Path]  # files runtime detection opens


def discover(models_dir: str, strict: bool = False) -> FolderContents:
    """The folder's models, read afresh (a long-lived reader keeps a ``FolderScanner``)."""
    return FolderScanner(models_dir, strict).scan()


class FolderScanner:
    """Reads a models folder as ``discover`` does, re-reading only what changed since the last scan.

    The specs it returns are shared with later scans: read them, and copy one before handing it to
    a model (``copy.deepcopy``), which may change its settings."""

    def __init__(self, models_dir: str, strict: bool = False, settle_ns: int = RACY_NS):
        self.models_dir = models_dir
        self.strict = strict
        self.settle_ns = settle_ns
        self.root = Path(models_dir)
        self._dirs: dict[Path, _Listing] = {}
        self._parsed: dict[Path, tuple[tuple, bool, ModelSettings | SettingsError]] = {}
        self._bare: dict[tuple[Path, str | None], tuple[tuple, bool, ModelSettings | str]] = {}
        self._lock = threading.Lock()  # poll mode scans from a thread while the loop serves the index
        self.parses = 0  # settings files read (tests and benches count them)

    def scan(self) -> FolderContents:
        with self._lock:
            return self._scan()

    def _scan(self) -> FolderContents:
        root = self.root
        if not root.is_dir():
            raise SettingsError(f"Model folder {root} does not exist or is not a folder")
        now = time.time_ns()
        seen_dirs: set[Path] = set()
        found = FolderContents()
        settings_files: list[tuple[Path, os.stat_result]] = []
        # Every folder holding a settings file, in itself or deeper down.
        holders: set[Path] = set()
        self._walk(root, now, settings_files, holders, seen_dirs)
        parsed = {}
        for path, st in settings_files:
            result = parsed[path] = self._settings(path, st, now)
            if isinstance(result, SettingsError):
                found.broken.setdefault(path.parent.name, str(result))
            else:
                found.specs.append(result)
        if len(self._parsed) != len(parsed):  # forget files that are gone
            self._parsed = {p: self._parsed[p] for p in parsed}
        top = self._dirs.get(root)
        subfolders = [p for p in top.dirs if not p.name.startswith((".", "_"))] if top else []
        loose = [p for p in subfolders if p not in holders]
        if not settings_files and (not subfolders or (root / "MLmodel").is_file()):
            # A folder holding just a model file (KServe's --model_dir layout), or an MLflow model folder
            # (its code/ or artifacts/ subfolders are the model's own); an empty one holds no model.
            files = [f for f in root.iterdir() if f.is_file() and not f.name.startswith(".") and f.name != "settings.json"]
            if files:
                spec = _bare(root.name, root, None)
                if isinstance(spec, ModelSettings):
                    found.specs.append(spec)
                else:
                    found.problems.append(f"{root}: {spec}")
            self._prune(seen_dirs, set())
            return found
        seen_bare: set[tuple[Path, str | None]] = set()
        for folder in loose:
            listing = self._listing(folder, now, seen_dirs)
            if listing is None:  # gone since its parent was listed (or a dangling symlink)
                continue
            versions = [v for v in listing.dirs if v.name.isdigit()]
            for where, version in [(v, v.name) for v in versions] or [(folder, None)]:
                seen_bare.add((where, version))
                spec = self._bare_spec(folder.name, where, version, now, seen_dirs)
                if isinstance(spec, ModelSettings):
                    found.specs.append(spec)
                else:
                    found.problems.append(f"{where}: {spec}")
        self._prune(seen_dirs, seen_bare)
        return found

    def _prune(self, seen_dirs: set[Path], seen_bare: set[tuple[Path, str | None]]) -> None:
        """Forget folders that are gone, so a long-lived scanner holds only what the folder holds."""
        if len(self._dirs) != len(seen_dirs):
            self._dirs = {p: self._dirs[p] for p in seen_dirs if p in self._dirs}
        if len(self._bare) != len(seen_bare):
            self._bare = {k: self._bare[k] for k in seen_bare if k in self._bare}

    # -- the walk -------------------------------------------------------------------------------
    def _walk(self, folder: Path, now: int, out: list, holders: set[Path], seen: set[Path]) -> bool:
        """Append every settings file under ``folder`` (sorted by path, as ``sorted(rglob(...))``)."""
        listing = self._listing(folder, now, seen)
        if listing is None:
            return False
        held = False
        for path, is_settings in listing.walk:
            if is_settings:
                st = _stat(path)
                if st is not None:  # a dangling symlink is no settings file
                    out.append((path, st))
                    held = True
            elif self._walk(path, now, out, holders, seen):
                held = True
        if held:
            holders.add(folder)
        return held

    def _listing(self, folder: Path, now: int, seen: set[Path]) -> _Listing | None:
        st = _stat(folder)
        if st is None:
            return None
        seen.add(folder)
        hit = self._dirs.get(folder)
        key = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_nlink)  # nlink: sub-folders added or removed
        if hit is not None and hit.trusted and hit.key == key:
            return hit
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:  # unreadable (rglob skips it too) or gone meanwhile
            self._dirs.pop(folder, None)
            return None
        walk: list[tuple[Path, bool]] = []
        dirs: list[Path] = []
        heads: list[Path] = []
        for e in entries:
            path = folder / e.name
            is_dir = _safe(e.is_dir)
            if e.name == _SETTINGS:
                walk.append((path, True))
            if is_dir:
                dirs.append(path)
                if not _safe(e.is_symlink):
                    walk.append((path, False))
            elif e.name.lower().endswith(_HEAD_SUFFIXES) and _safe(e.is_file):
                heads.append(path)
        listing = _Listing(key, self._settled(st, now), walk, dirs, heads)
        self._dirs[folder] = listing
        return listing

    # -- what each model is ------------------------------------------------------------------
    def _settings(self, path: Path, st: os.stat_result, now: int) -> ModelSettings | SettingsError:
        # Stat first, read after: a write in between leaves a stale key, which only costs a re-read.
        key = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev)
        hit = self._parsed.get(path)
        if hit is not None and hit[1] and hit[0] == key:
            return hit[2]
        self.parses += 1
        try:
            result: ModelSettings | SettingsError = load_model_settings(path, strict=self.strict)
        except SettingsError as exc:
            result = exc
        self._parsed[path] = (key, self._settled(st, now), result)
        return result

    def _settled(self, st: os.stat_result, now: int) -> bool:
        """Whether what was read at ``now`` can be trusted while the stat stays the same."""
        return max(st.st_mtime_ns, st.st_ctime_ns) + self.settle_ns < now

    def _bare_spec(self, name: str, folder: Path, version: str | None, now: int, seen: set[Path]) -> ModelSettings | str:
        stamp, trusted = self._stamp(folder, now, seen)
        hit = self._bare.get((folder, version))
        if hit is not None and hit[1] and hit[0] == stamp:
            return hit[2]
        result = _bare(name, folder, version)
        self._bare[(folder, version)] = (stamp, trusted, result)
        return result

    def _stamp(self, folder: Path, now: int, seen: set[Path], depth: int = 0) -> tuple[tuple, bool]:
        """What runtime detection reads of ``folder``: its names (the listing's mtime), the files whose
        contents it reads, and the only sub-folder of an unpacked archive."""
        listing = self._listing(folder, now, seen)
        if listing is None:
            return (None,), False
        parts: list[Any] = [listing.key]
        trusted = listing.trusted
        for path in listing.heads:
            st = _stat(path)
            parts.append((st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino) if st else None)
            trusted = trusted and st is not None and self._settled(st, now)
        if depth == 0:  # a sub-folder it may descend into (an unpacked archive): one level
            for sub in listing.dirs:
                if not sub.name.startswith("."):
                    inner, inner_trusted = self._stamp(sub, now, seen, 1)
                    parts.append(inner)
                    trusted = trusted and inner_trusted
        return tuple(parts), trusted


def _bare(name: str, folder: Path, version: str | None) -> ModelSettings | str:
    from ..runtimes import RUNTIMES, detect_runtime  # imports no framework

    try:
        runtime = detect_runtime(folder)
    except SettingsError as exc:
        return str(exc)
    # "." is the settings folder itself (a relative root like ./iris must not resolve to iris/iris).
    params = ModelParameters(uri=".", version=version)
    return ModelSettings(name=name, implementation=RUNTIMES[runtime], parameters=params, folder=str(folder))


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None


def _safe(check: Any) -> bool:
    try:
        return bool(check())
    except OSError:
        return False

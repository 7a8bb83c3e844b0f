"""Repository poll mode (Triton's ``--model-control-mode=poll``).

Every ``poll_interval`` seconds the model folder is scanned; a model version whose settings file or
files changed is reloaded with the zero-error swap (``ModelRepository.replace_from_settings``: the
new load is made beside the serving one and swapped in once ready), a new one is loaded, a removed
one unloaded. A new version that fails to build or load leaves the old one serving, with the reason
in the repository index and the log. Like Triton's, a scan is not synchronised with writers: write a
model's files first and its ``model-settings.json`` last (or atomically, with a rename).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger("modelport")


def fingerprint(folder: str | None) -> tuple:
    """What changes when a model's files do: every file's path, size and modification time."""
    if not folder or not os.path.isdir(folder):
        return ()
    out = []
    for path in sorted(Path(folder).rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts) or not path.is_file():
            continue
        st = path.stat()
        out.append((str(rel), st.st_size, st.st_mtime_ns))
    return tuple(out)


class RepositoryPoller:
    def __init__(self, repository: Any, router: Any, interval: float):
        self.repository = repository
        self.router = router
        self.interval = interval
        self._seen: dict[tuple[str, str | None], tuple] = {}
        self._broken: dict[str, str] = {}
        self._missing = False
        self._task: asyncio.Task | None = None
        self.scans = 0  # how many scans finished (tests wait on it)

    def start(self) -> None:
        specs, _ = self.repository._scan_folder()
        self._seen = {(s.name, s.version): fingerprint(s.folder) for s in specs}
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.scan()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one bad scan must not stop polling
                logger.exception("Repository poll failed")
            self.scans += 1

    async def scan(self) -> None:
        repo = self.repository
        if not os.path.isdir(repo.models_dir):  # gone (an unmounted volume?): keep serving what is loaded
            if not self._missing:
                logger.warning("The models folder is missing; the loaded models serve on until it is back")
            self._missing = True
            return
        self._missing = False
        specs, broken = await asyncio.get_running_loop().run_in_executor(None, repo._scan_folder)
        for name, reason in broken.items():
            if self._broken.get(name) != reason:
                logger.error("Model %s: settings cannot be used, the previous load serves on: %s", name, reason)
            for entry in repo._entries.get(name, {}).values():
                if entry.state.value == "READY":
                    entry.reason = f"settings cannot be used, the previous load serves on: {repo._public(reason)}"
        self._broken = broken
        current = {}
        for spec in specs:
            key = (spec.name, spec.version)
            current[key] = print_ = await asyncio.get_running_loop().run_in_executor(None, fingerprint, spec.folder)
            if self._seen.get(key) == print_:
                continue
            # The print taken before the load: files still being written while it loads differ from
            # it, so the next scan loads again rather than keeping a half-written copy.
            self._seen[key] = print_
            logger.info("Model %s%s changed on disk; loading it", spec.name, f" (version {spec.version})" if spec.version else "")
            _forget_modules(spec.folder)  # a changed model.py is imported afresh
            async with repo._lock(spec.name):
                await repo.replace_from_settings(copy.deepcopy(spec))  # the scanner's spec is shared
            if spec.traffic and self.router.describe(spec.name) != _policy_doc(spec):
                try:
                    self.router.set_policy(spec.name, spec.traffic, check=False)
                except Exception as exc:  # noqa: BLE001
                    logger.error("Model %s: traffic policy not applied: %s", spec.name, exc)
        for key in list(self._seen):
            name, version = key
            if key not in current and name not in broken:
                del self._seen[key]
                entry = repo._entries.get(name, {}).get(version)
                if entry is not None:
                    logger.info("Model %s removed from the folder; unloading it", name)
                    async with repo._lock(name):
                        await repo._unload_entry(entry)


def _policy_doc(spec: Any) -> Any:
    from .policy import TrafficPolicy

    try:
        return TrafficPolicy.from_dict(spec.traffic, spec.name).to_dict()
    except Exception:  # noqa: BLE001
        return None


def _forget_modules(folder: str | None) -> None:
    if not folder:
        return
    prefix = os.path.abspath(folder) + os.sep
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and os.path.abspath(path).startswith(prefix):
            del sys.modules[name]

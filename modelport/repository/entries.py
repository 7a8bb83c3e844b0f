"""Live models: register, load, unload, versions and states.

A model is known by name and optional version. Models come from code (``update``) or from a folder
of ``model-settings.json`` files (``load`` by name, re-reading the folder). Loading one model never
stops the others: a failure leaves that model FAILED with the reason, shown in the index and logged.
Unloading waits for the model's in-flight requests before its stop hook runs.
"""

from __future__ import annotations

import asyncio
import copy
import enum
import importlib
import itertools
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import InvalidInput, ModelNotFound, ModelNotReady, public_reason
from ..model import Model
from ..execution.runner import ModelRunner
from ..settings import ModelSettings, SettingsError, model_option

logger = logging.getLogger("modelport")


class ModelState(str, enum.Enum):
    REGISTERED = "REGISTERED"  # known, loaded on its first request (residency.py)
    LOADING = "LOADING"
    READY = "READY"
    UNLOADING = "UNLOADING"
    UNAVAILABLE = "UNAVAILABLE"
    FAILED = "FAILED"
    EVICTED = "EVICTED"  # unloaded to make room; loaded again on its next request (residency.py)


_uses = itertools.count(1)


@dataclass(eq=False)
class ModelEntry:
    name: str
    version: str | None
    model: Model | None = None
    runner: ModelRunner | None = None
    settings: ModelSettings | None = None
    state: ModelState = ModelState.LOADING
    reason: str = ""
    in_flight: int = 0
    max_queue_size: int = 0
    _idle: asyncio.Event | None = field(default=None, repr=False)
    # Residency (residency.py): loaded on demand, never evicted when pinned, requests waiting for its
    # load, its last use (LRU order), and its memory as measured at its last load.
    on_demand: bool = False
    pinned: bool = False
    waiting: int = 0
    last_used: int = 0
    loads: int = 0
    memory_bytes: int = 0
    memory_source: str = ""
    cold_start: float = 0.0
    retry_at: float = 0.0
    built_epoch: int = 0  # the heap freezer's epoch when ``model`` was made (serving/heap.py)

    def enter(self) -> None:
        self.in_flight += 1
        self.last_used = next(_uses)

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0 and self._idle is not None:
            self._idle.set()

    async def wait_idle(self) -> None:
        if self.in_flight:
            if self._idle is None or self._idle.is_set():  # several may wait (an unload, an eviction)
                self._idle = asyncio.Event()
            await self._idle.wait()


def _version_key(version: str | None) -> tuple:
    """Natural order, so "10" sorts after "9"; the unversioned entry sorts first."""
    if version is None:
        return ()
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", version) if p)


# A factory builds a runner for a loaded model; the server passes one that knows the metrics,
# hook threads, batching and worker settings.
RunnerFactory = Callable[[Model, "ModelSettings | None"], ModelRunner]


class ModelRepository:
    def __init__(
        self,
        models_dir: str | None = None,
        runner_factory: RunnerFactory | None = None,
        strict: bool = False,
        default_model: ModelSettings | None = None,
    ):
        self.models_dir = models_dir
        # Unknown keys in model-settings.json: an error when strict, else a warning.
        self.strict = strict
        # Served when the folder defines no model (MLServer's MLSERVER_MODEL_* variables).
        self.default_model = default_model
        # Why parts of the folder yield no model, from the last read (logged, and shown by readiness).
        self.problems: list[str] = []
        self._scanner: Any = None  # discovery.FolderScanner, made on the first read of the folder
        self._entries: dict[str, dict[str | None, ModelEntry]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._runner_factory = runner_factory or (lambda model, settings: ModelRunner(model))
        # The runner factory in two steps, set by the server: what a model needs from the moment it is
        # registered (its controls and custom routes), and its runner (stats, observers, batcher, threads).
        # A model registered to load on demand gets its runner at its first load, so registering
        # thousands stays cheap; release_runner lets go of a runner dropped with its model instance (an
        # evicted model's, see residency.py).
        self.prepare_model: Callable[[Model, ModelSettings | None], None] | None = None
        self.build_runner: RunnerFactory | None = None
        self.release_runner: Callable[[ModelRunner], None] | None = None
        # Awaited after a model's load hook and before it is marked READY (warmup, graph binding).
        self.before_ready: Callable[[ModelEntry], Any] | None = None
        # More models than memory (residency.py): set when max_loaded_models or memory_budget is.
        self.residency: Any = None

    # -- KServe-style accessors ----------------------------------------------------------------
    def get_model(self, name: str, version: str | None = None) -> Model | None:
        entry = self._find(name, version)
        return entry.model if entry else None

    def get_models(self) -> dict[str, Model]:
        return {name: e.model for name in self._entries if (e := self._find(name, None)) and e.model is not None}

    def expect(self, models: list[tuple[Model, ModelSettings | None]]) -> None:
        """Record models about to load (state LOADING) so that requests arriving before their load
        starts are answered "not ready" (503, retried by clients) rather than "not found"."""
        for model, settings in models:
            versions = self._entries.setdefault(model.name, {})
            version = getattr(model, "version", None)
            if version not in versions:
                versions[version] = ModelEntry(model.name, version, model=model, settings=settings)

    def update(self, model: Model, settings: ModelSettings | None = None) -> ModelEntry:
        """Register a model built in code (not yet loaded, or loaded already)."""
        entry = self._new_entry(model, settings)
        self._entries.setdefault(model.name, {})[entry.version] = entry
        return entry

    def _new_entry(self, model: Model, settings: ModelSettings | None, on_demand: bool = False) -> ModelEntry:
        version = getattr(model, "version", None)
        entry = ModelEntry(name=model.name, version=version, model=model, settings=settings)
        entry.max_queue_size = model_option(model, settings, "max_queue_size", 0)
        if on_demand and self.prepare_model is not None and self.build_runner is not None:
            self.prepare_model(model, settings)  # its runner is made at its first load (residency.py)
        else:
            entry.runner = self._runner_factory(model, settings)
        entry.state = ModelState.READY if model.ready else ModelState.LOADING
        return entry

    async def is_model_ready(self, name: str, version: str | None = None) -> bool:
        entry = self._find(name, version)
        if entry is None:
            raise ModelNotFound(name, version)
        return entry.state is ModelState.READY and bool(entry.model and entry.model.ready)

    # -- lookup on the request path ------------------------------------------------------------
    def _find(self, name: str, version: str | None) -> ModelEntry | None:
        versions = self._entries.get(name)
        if not versions:
            return None
        if version is not None:
            return versions.get(version)
        if None in versions and len(versions) == 1:
            return versions[None]
        # The newest version that serves; a newer one still loading (or failed) never takes traffic.
        ready = [v for v, e in versions.items() if e.state is ModelState.READY or (e.on_demand and e.state in _ON_DEMAND)]
        return versions[max(ready or versions, key=_version_key)]

    def resolve(self, name: str, version: str | None = None, require_ready: bool = True) -> ModelEntry:
        entry = self._find(name, version)
        if entry is None:
            raise ModelNotFound(name, version)
        # A model the server knows but does not serve now is "not ready" (503, which clients retry);
        # "not found" (404) is only for names it has never known.
        if entry.state is ModelState.UNAVAILABLE:
            raise ModelNotReady(name, entry.reason or "unloaded")
        if require_ready and (entry.state is not ModelState.READY or not entry.model.ready) and not entry.on_demand:
            raise ModelNotReady(name, entry.reason or entry.state.value.lower())
        return entry

    def entries(self) -> list[ModelEntry]:
        return [e for versions in self._entries.values() for e in versions.values()]

    def entries_of(self, name: str) -> list[ModelEntry]:
        """Every version of ``name`` (empty when unknown): one lookup, where ``entries()`` walks them all."""
        return list(self._entries.get(name, {}).values())

    def all_ready(self) -> bool:
        """True when every model this server was asked to serve is ready."""
        # A model loaded on demand does not hold readiness back, even when its last load failed.
        return all(e.state is ModelState.READY and e.model.ready for e in self.entries()
                   if e.state is not ModelState.UNAVAILABLE and not e.on_demand)

    def index(self) -> list[dict[str, Any]]:
        """Every model known, loaded or not (the V2 repository index)."""
        known = {(e.name, e.version): e for e in self.entries()}
        gone: dict[tuple[str, str | None], str] = {}  # loaded from a folder no longer there: why, for the index
        if self.models_dir:
            folder_missing = not os.path.isdir(self.models_dir)
            specs, broken = ([], {}) if folder_missing else self._scan_folder()
            for s in specs:
                known.setdefault((s.name, s.version), ModelEntry(s.name, s.version, state=ModelState.UNAVAILABLE))
            # A settings file that cannot be read is shown under its folder's name, with the reason.
            for name, reason in broken.items():
                known.setdefault((name, None), ModelEntry(name, None, state=ModelState.FAILED, reason=self._public(reason)))
            listed = {(s.name, s.version) for s in specs} | {(n, None) for n in broken}
            for key, e in known.items():
                folder = getattr(e.settings, "folder", None)
                if key not in listed and folder and e.state is ModelState.READY:
                    where = "the models folder is missing" if folder_missing else f"{self._public(folder)}/ is gone from the models folder"
                    gone[key] = f"{where}; the copy loaded before serves on"
        out = []
        for (name, version), e in sorted(known.items(), key=lambda kv: (kv[0][0], _version_key(kv[0][1]))):
            item: dict[str, Any] = {"name": name, "state": e.state.value, "reason": gone.get((name, version), e.reason)}
            if version is not None:
                item["version"] = version
            if e.on_demand and self.residency is not None:
                item.update(self.residency.describe(e))
            if getattr(e.model, "nodes", None) and getattr(e.model, "graph", None):  # an inference graph
                item["graph"] = {n: [s["name"] for s in node["steps"]] for n, node in e.model.nodes.items()}
            out.append(item)
        return out

    # -- loading and unloading ----------------------------------------------------------------
    async def load_model(self, model: Model, settings: ModelSettings | None = None, register: bool = True) -> ModelEntry:
        """Register a model and run its load hook; a failure marks it FAILED and is logged, not raised.

        ``register=False`` loads it aside (for a swap, see ``replace_model``)."""
        try:
            entry = self._new_entry(model, settings, on_demand=register and self.residency is not None and not model.ready)
        except Exception as exc:  # noqa: BLE001 - e.g. a process pool for a model that cannot be pickled
            logger.error("Model %s cannot be served: %s", model.name, exc)
            entry = ModelEntry(model.name, getattr(model, "version", None), model=model, settings=settings,
                               state=ModelState.FAILED, reason=self._public(str(exc)))
            if register:
                self._entries.setdefault(model.name, {})[entry.version] = entry
            return entry
        if register:
            versions = self._entries.setdefault(model.name, {})
            if self.residency is not None and entry.version in versions:
                self.residency.forget(versions[entry.version])  # replaced: it no longer counts
            versions[entry.version] = entry
            if self.residency is not None:  # registered; loaded on its first request (pinned: now)
                self.residency.register(entry)
                if entry.pinned and entry.state is not ModelState.READY:
                    await self.residency.ensure(entry)
                return entry
        if model.ready and self.before_ready is None:
            entry.state = ModelState.READY
            return entry
        entry.state = ModelState.LOADING
        try:
            ready = model.ready or await entry.runner.load()
            if ready and self.before_ready is not None:  # e.g. warmup: still LOADING, so no traffic yet
                await self.before_ready(entry)
        except Exception as exc:  # noqa: BLE001 - any model failure is reported, never fatal
            logger.exception("Model %s failed to load", _label(entry))
            # The client sees the message without server paths or the exception class; the log has all.
            entry.state, entry.reason = ModelState.FAILED, f"load failed: {self._public(str(exc) or type(exc).__name__)}"
            return entry
        if ready:
            entry.state, entry.reason = ModelState.READY, ""
            logger.info("Model %s is ready", _label(entry))
        else:
            entry.state, entry.reason = ModelState.FAILED, "load() returned without making the model ready"
            logger.error("Model %s: %s", _label(entry), entry.reason)
        return entry

    async def replace_model(self, model: Model, settings: ModelSettings | None = None) -> ModelEntry:
        """Load ``model`` beside the serving entry of the same name and version, then swap it in and
        unload the old one once its in-flight requests finish: no request fails or waits. If the new
        one fails, the old one serves on and carries the reason. Returns the new entry."""
        old = self._entries.get(model.name, {}).get(getattr(model, "version", None))
        if old is None or old.state is not ModelState.READY:
            return await self.load_model(model, settings)
        new = await self.load_model(model, settings, register=False)
        if new.state is ModelState.READY:
            self._entries[model.name][new.version] = new  # one assignment: the swap
            if self.residency is not None:
                self.residency.adopt(new, old)
            await self._unload_entry(old)
            return new
        old.reason = f"reload failed, the previous load serves on: {new.reason}"
        logger.error("Model %s: %s", _label(old), old.reason)
        return new

    async def replace_from_settings(self, settings: ModelSettings) -> ModelEntry:
        old = self._entries.get(settings.name, {}).get(settings.version)
        try:
            model = build_model(settings)
        except Exception as exc:  # noqa: BLE001
            if old is None or old.state is not ModelState.READY:
                return await self.load_from_settings(settings)
            old.reason = f"reload failed, the previous load serves on: {self._public(str(exc))}"
            logger.error("Model %s: %s", _label(old), old.reason)
            return ModelEntry(settings.name, settings.version, settings=settings, state=ModelState.FAILED, reason=old.reason)
        return await self.replace_model(model, settings)

    async def load_from_settings(self, settings: ModelSettings) -> ModelEntry:
        try:
            model = build_model(settings)
        except Exception as exc:  # noqa: BLE001
            logger.error("Model %s cannot be built: %s", settings.name, exc)
            entry = ModelEntry(settings.name, settings.version, settings=settings, state=ModelState.FAILED,
                               reason=self._public(str(exc)))
            self._entries.setdefault(settings.name, {})[settings.version] = entry
            return entry
        return await self.load_model(model, settings)

    async def load(self, name: str) -> bool:
        """(Re)load every version of ``name`` from the model folder; True when all are ready."""
        if self.models_dir and not os.path.isdir(self.models_dir):  # said without the server's paths
            raise SettingsError(f"Model {name} cannot be loaded: the models folder (model_repository) is missing")
        async with self._lock(name):
            specs, broken = self._scan_folder()
            specs = [copy.deepcopy(s) for s in specs if s.name == name]  # the scanner's are shared: the model gets its own
            if name in broken:  # only this model's own broken settings file stops its load
                logger.warning("Model %s cannot be loaded: %s", name, broken[name])
                raise SettingsError(f"Model {name} cannot be loaded: {self._public(broken[name])}")
            if not specs:
                entry = self._find(name, None)
                if entry is None or entry.model is None:
                    raise ModelNotFound(name)
                # A model registered in code: run its load hook again.
                entry = await self.load_model(entry.model, entry.settings)
                if self.residency is not None and entry.on_demand:
                    await self.residency.ensure(entry)
                return entry.state is ModelState.READY
            # A reload swaps each version in beside the serving one (no request fails meanwhile);
            # versions gone from the folder are unloaded.
            wanted = {s.version for s in specs}
            entries = [await self.replace_from_settings(s) for s in specs]
            if self.residency is not None:  # an explicit load loads now, and counts against the limits
                for entry in entries:
                    if entry.on_demand:
                        await self.residency.ensure(entry)
            for version, old in list(self._entries.get(name, {}).items()):
                if version not in wanted:
                    await self._unload_entry(old)
            return all(e.state is ModelState.READY for e in entries)

    async def unload(self, name: str, version: str | None = None) -> None:
        """Unload every version of ``name``, or only ``version``."""
        async with self._lock(name):
            versions = self._entries.get(name)
            if not versions or (version is not None and version not in versions):
                raise ModelNotFound(name, version)
            # Unloading a known model that is already unloaded is done already (as Triton answers).
            for entry in list(versions.values()) if version is None else [versions[version]]:
                await self._unload_entry(entry)

    async def unload_all(self) -> None:
        for entry in self.entries():
            await self._unload_entry(entry)

    async def _unload_entry(self, entry: ModelEntry) -> None:
        if entry.state is ModelState.UNAVAILABLE:
            return
        if self.residency is not None:  # after a load or eviction in progress; then it wins
            await self.residency.settle(entry)
            self.residency.forget(entry)
        was_loaded = entry.state is ModelState.READY
        entry.state = ModelState.UNLOADING
        await entry.wait_idle()
        await stop_model(entry, hooks=was_loaded)
        entry.state, entry.reason = ModelState.UNAVAILABLE, "unloaded"
        logger.info("Model %s unloaded", _label(entry))

    def build_folder(self) -> list[tuple[Model, ModelSettings]]:
        """Every model of the folder, built but not loaded.

        A model that cannot even be built (bad settings, a class that fails to import) is a
        configuration error: SettingsError, before anything loads. A model whose load hook fails
        later is only marked FAILED, and the others serve on.
        """
        built = []
        for spec in self._read_folder():
            spec = copy.deepcopy(spec)  # the scanner's are shared: the model gets its own
            try:
                built.append((build_model(spec), spec))
            except Exception as exc:
                raise SettingsError(f"Model {spec.name} in {spec.folder}: {exc}") from exc
        return built

    async def load_folder(self) -> list[ModelEntry]:
        """Load every model in the folder, concurrently."""
        return list(await asyncio.gather(*(self.load_model(model, spec) for model, spec in self.build_folder())))

    def _read_folder(self, quiet: bool = False) -> list[ModelSettings]:
        """Every model of the folder; at start-up any broken settings file is a configuration error."""
        specs, broken = self._scan_folder(quiet)
        if broken:
            name, reason = next(iter(broken.items()))
            raise SettingsError(f"Model {name}: {reason}")
        return specs

    def _scan_folder(self, quiet: bool = True) -> tuple[list[ModelSettings], dict[str, str]]:
        """The folder's models (model-settings.json files, and model files without one: see
        discovery.py), and a reason per model name whose settings cannot be used, so that one broken
        file never blocks loading the others. Folders that yield no model are logged unless ``quiet``."""
        if not self.models_dir:
            return ([self.default_model] if self.default_model else []), {}
        found = self._folder_scanner().scan()
        specs, broken = found.specs, found.broken
        if not specs and not broken and self.default_model is not None:
            specs, found.problems = [self.default_model], []
        self.problems = found.problems
        if not quiet:
            for problem in found.problems:
                logger.warning("No model served from %s", problem)
        seen: set[tuple[str, str | None]] = set()
        for s in specs:
            if (s.name, s.version) in seen:
                broken[s.name] = f"version {s.version} is defined twice in the model folder"
            seen.add((s.name, s.version))
        return [s for s in specs if s.name not in broken], broken

    def _folder_scanner(self) -> Any:
        """The folder's reader, which keeps each settings file's parse until the file changes (an index
        or a load by name then reads only what changed, not every model's file)."""
        from .scan import FolderScanner

        scanner = self._scanner
        if scanner is None or scanner.models_dir != self.models_dir or scanner.strict != self.strict:
            scanner = self._scanner = FolderScanner(self.models_dir, self.strict)
        return scanner

    def _public(self, text: str) -> str:
        return public_reason(text, self.models_dir)

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())


# States of a model loaded on demand that a request may wait on (FAILED waits out its back-off).
_ON_DEMAND = (ModelState.REGISTERED, ModelState.EVICTED, ModelState.LOADING, ModelState.UNLOADING)


def _label(entry: ModelEntry) -> str:
    return entry.name if entry.version is None else f"{entry.name} (version {entry.version})"


async def stop_model(entry: ModelEntry, hooks: bool = True, when: str = "") -> None:
    """An unload or an eviction: the model's stop hooks (``hooks``; a failure is logged, never raised),
    then its model is not ready."""
    if hooks and entry.runner is not None:
        try:
            await entry.runner.stop()
        except Exception:  # noqa: BLE001
            logger.exception("Model %s: stop hook failed%s", _label(entry), when)
    if entry.model is not None:
        entry.model.ready = False


def import_class(path: str, search_path: str | None = None) -> type:
    """Import "module.Class", looking in ``search_path`` (the model's folder) first."""
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise SettingsError(f"implementation {path!r} must be \"module.Class\"")
    if search_path and search_path not in sys.path:
        sys.path.insert(0, search_path)
    try:
        module = _import_from(module_name, search_path)
    except Exception as exc:
        raise SettingsError(f"Cannot import module {module_name!r} for implementation {path!r}: {type(exc).__name__}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise SettingsError(f"Module {module_name!r} has no class {class_name!r}")
    return cls


def _import_from(module_name: str, search_path: str | None) -> Any:
    """Import ``module_name``; when another model's folder already loaded a module of that name
    (two MLServer runtimes each with a ``models.py``), load this folder's own copy, as MLServer does."""
    loaded = sys.modules.get(module_name)
    if loaded is None or not search_path:
        return importlib.import_module(module_name)
    top = module_name.split(".")[0]
    here = os.path.join(search_path, *module_name.split("."))
    if not (os.path.isfile(here + ".py") or os.path.isdir(os.path.join(search_path, top))):
        return loaded
    where = os.path.dirname(os.path.abspath(getattr(loaded, "__file__", "") or ""))
    if where.startswith(os.path.abspath(search_path)):
        return loaded
    sys.path.remove(search_path)
    sys.path.insert(0, search_path)  # this folder first, so the re-import finds its file
    for name in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
        del sys.modules[name]
    return importlib.import_module(module_name)


def build_model(settings: ModelSettings) -> Model:
    """A model instance from its settings: import the class, construct, attach the settings."""
    from ..runtimes import resolve_implementation  # imports no framework: runtimes load theirs lazily

    # Built-in aliases ("sklearn", "mlserver_sklearn.SKLearnModel") resolved, dotted paths kept,
    # and a missing implementation detected from the model's files.
    if (settings.implementation or "").strip().lower() == "graph" or (settings.graph and not settings.implementation):
        implementation = "modelport.routing.graph.GraphModel"  # an inference graph is a model too
    else:
        implementation = resolve_implementation(settings)
        if settings.parameters.environment_path:
            _use_environment(settings)
    cls = import_class(implementation, settings.folder)
    from ..compat.mlserver.adapter import is_mlmodel_class, wrap_mlmodel

    if is_mlmodel_class(cls):  # an MLServer custom runtime, imports changed to modelport.mlserver
        return wrap_mlmodel(cls, settings)
    model = cls(settings.name)
    if not isinstance(model, Model):
        raise InvalidInput(f"{implementation} is neither a modelport.Model nor a modelport.mlserver.MLModel subclass")
    model.settings = settings
    model.version = settings.version
    if settings.inputs and not model.inputs:
        model.inputs = settings.inputs
    if settings.outputs and not model.outputs:
        model.outputs = settings.outputs
    if settings.platform:
        model.platform = settings.platform
    return model


def _use_environment(settings: ModelSettings) -> None:
    """MLServer's parameters.environment_path: import the model's packages from that environment."""
    root = os.path.abspath(os.path.join(settings.folder or ".", settings.parameters.environment_path))
    site = os.path.join(root, "lib", f"python{sys.version_info.major}.{sys.version_info.minor}", "site-packages")
    if not os.path.isdir(site):
        raise SettingsError(
            f"Model {settings.name}: parameters.environment_path {root} has no {os.path.relpath(site, root)}; "
            f"it must be an unpacked environment for this server's Python {sys.version_info.major}.{sys.version_info.minor}"
        )
    if site not in sys.path:
        sys.path.append(site)  # after the server's own packages, so the server's versions win

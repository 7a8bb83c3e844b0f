"""More models than memory: register many, keep the recently used ones loaded, load the rest on first use.

Switched on by ``max_loaded_models`` and/or ``memory_budget``. Models are then *registered* (built, not
loaded); the first request for one loads it while later requests for it wait for that same load; a
load that would pass a limit first unloads the least recently used idle, unpinned models. A model with
requests in flight, or requests waiting for it, is never chosen. When nothing can be evicted within
``eviction_wait`` seconds the load fails with a 503 saying the budget is full.

The data plane pays for this only when a model is not resident: its admission checks one state
(``entry.state is READY``) and comes here otherwise (see ``DataPlane._enter``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
import types
from typing import Any, Iterator

from ..errors import DeadlineExceeded, ModelNotReady
from .entries import ModelEntry, ModelState, _label, _uses, build_model, stop_model

logger = logging.getLogger("modelport")

# Cold starts span a tiny sklearn model (ms) to a large one (tens of seconds).
_COLD_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "t": 1000**4, "tb": 1000**4, "ki": 1024, "kib": 1024, "mi": 1024**2, "mib": 1024**2, "gi": 1024**3,
          "gib": 1024**3, "ti": 1024**4, "tib": 1024**4}


def parse_size(value: Any, what: str = "memory_budget") -> int:
    """Bytes from an int or a size string ("2GiB", "512MB", "1.5g"); 0 or empty: no limit."""
    from ..settings import SettingsError

    if value is None or value == "" or value == 0:
        return 0
    if isinstance(value, bool):
        raise SettingsError(f"Setting {what}: expected bytes or a size such as \"2GiB\", got {value!r}")
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", str(value))
        if not match or match.group(2).lower() not in _UNITS:
            raise SettingsError(f"Setting {what}: {value!r} is not bytes or a size such as \"2GiB\" or \"512MB\"")
        number, unit = float(match.group(1)), match.group(2).lower()
    if number < 0:
        raise SettingsError(f"Setting {what}: must not be negative")
    return int(number * _UNITS[unit])


def format_size(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n}B"


def rss_bytes() -> int:
    """This process's resident set size (Linux /proc; 0 where unknown)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Residency:
    """Which registered models are resident, their memory, and the least-recently-used eviction."""

    def __init__(self, repository: Any, max_loaded_models: int = 0, memory_budget: int = 0, max_concurrent_loads: int = 4,
                 load_retry_after: float = 5.0, eviction_wait: float = 10.0, registry: Any = None):
        self.repository = repository
        self.max_models = max_loaded_models
        self.budget = memory_budget
        self.max_concurrent_loads = max_concurrent_loads
        self.retry_after = load_retry_after
        self.eviction_wait = eviction_wait
        self._loads = asyncio.Semaphore(max_concurrent_loads)
        # Entries holding memory now (READY) or about to (LOADING): what the limits count.
        self._resident: dict[ModelEntry, None] = {}
        # At most one load or eviction per entry at a time; every waiter awaits the same task.
        self._tasks: dict[ModelEntry, asyncio.Task] = {}
        self._changed: asyncio.Event | None = None  # set when room may have appeared
        self.budget_label = ""  # the budget as the settings wrote it ("2GiB"), for reasons
        self.loads_running = 0
        self.loads_peak = 0  # the most loads that ran at once (never above max_concurrent_loads)
        self.metrics = _ResidencyMetrics(self, registry) if registry is not None else None
        self.freezer: Any = None  # the server's heap freezer once it has frozen (frozen(), serving/heap.py)

    # -- registration -------------------------------------------------------------------------
    def register(self, entry: ModelEntry) -> None:
        """An entry the repository just made: resident if its model is ready already, else REGISTERED."""
        from ..settings import model_option

        entry.on_demand = True
        entry.pinned = bool(model_option(entry.model, entry.settings, "pinned", False))
        if entry.model is not None and entry.model.ready:
            entry.state = ModelState.READY
            self._measure(entry, 0)  # loaded before it came here: no RSS delta to take
            self._resident[entry] = None
        else:
            entry.state, entry.reason = ModelState.REGISTERED, ""

    def adopt(self, entry: ModelEntry, old: ModelEntry | None) -> None:
        """A model loaded beside a resident one and swapped in (a reload): it is resident now."""
        entry.on_demand = True
        entry.pinned = bool(getattr(old, "pinned", False)) or bool(
            getattr(entry.settings, "pinned", False) or getattr(entry.model, "pinned", False))
        entry.last_used = getattr(old, "last_used", 0)
        self._measure(entry, 0)
        self._resident[entry] = None
        if old is not None:
            self._resident.pop(old, None)
            if self._frozen(old) and old.runner is not None:  # frozen with what it loaded, now replaced
                self.freezer.let_go(None, f"model {_label(old)} (loaded before the heap froze) was replaced")
        entry.built_epoch = self._epoch()
        self._trim(exclude=entry)

    def forget(self, entry: ModelEntry) -> None:
        """An explicit unload (or a removal): it holds nothing and is not loadable on demand."""
        self._resident.pop(entry, None)
        self._pulse()

    def loadable(self, entry: ModelEntry) -> bool:
        """Whether a request for this entry would be served (loaded now, or loaded on demand)."""
        if entry.state is ModelState.FAILED:
            return time.monotonic() >= entry.retry_at
        return entry.state is not ModelState.UNAVAILABLE

    # -- admission (DataPlane._enter, for an entry that is not READY) ---------------------------
    async def admit(self, entry: ModelEntry, timeout: float | None) -> None:
        """Return once ``entry`` is READY, loading it (or waiting for its load) within ``timeout``."""
        entry.waiting += 1  # a model someone waits for is never evicted
        try:
            if timeout is None:
                await self._until_ready(entry)
            else:
                try:
                    async with asyncio.timeout(timeout):
                        await self._until_ready(entry)
                except TimeoutError:
                    raise DeadlineExceeded(
                        f"Model {entry.name} did not finish loading within the request's deadline of {timeout:g} s; "
                        "its load goes on, retry shortly") from None
        finally:
            entry.waiting -= 1

    async def _until_ready(self, entry: ModelEntry) -> None:
        loaded_once = False
        while entry.state is not ModelState.READY:
            if entry.state is ModelState.UNAVAILABLE:
                raise ModelNotReady(entry.name, entry.reason or "unloaded")
            task = self._tasks.get(entry)
            if task is not None and task.done():  # finished, its done callback not run yet
                del self._tasks[entry]
                task = None
            if task is None:
                if entry.state is ModelState.FAILED and time.monotonic() < entry.retry_at:
                    wait = max(0.0, entry.retry_at - time.monotonic())
                    raise ModelNotReady(entry.name, f"{entry.reason} (next load attempt in {wait:.1f} s)")
                if loaded_once:  # the load this request waited for did not make it ready
                    raise ModelNotReady(entry.name, entry.reason or entry.state.value.lower())
                task = self._start(entry, self._load(entry))
                loaded_once = True
            await asyncio.shield(task)  # a waiter's deadline cancels its wait, never the shared load

    def _start(self, entry: ModelEntry, coro: Any) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks[entry] = task

        def done(t: asyncio.Task) -> None:
            if self._tasks.get(entry) is t:
                del self._tasks[entry]
            if not t.cancelled():
                t.exception()  # reported through the entry's state; never "never retrieved"
            self._pulse()

        task.add_done_callback(done)
        return task

    async def settle(self, entry: ModelEntry) -> None:
        """Wait for a load or eviction of ``entry`` in progress (an explicit unload goes after it)."""
        task = self._tasks.get(entry)
        if task is not None:
            await asyncio.gather(asyncio.shield(task), return_exceptions=True)

    async def ensure(self, entry: ModelEntry) -> None:
        """An explicit load (repository API, ModelMesh's adapter, pinned models at start): load now."""
        if entry.state is ModelState.FAILED:
            entry.retry_at = 0.0  # an operator's explicit load is never held back by the back-off
        try:
            await self.admit(entry, None)
        except Exception:  # noqa: BLE001 - the entry carries the reason
            pass

    # -- one load ---------------------------------------------------------------------------------
    async def _load(self, entry: ModelEntry) -> None:
        repo = self.repository
        started = time.perf_counter()  # a cold start counts its wait for a load slot too
        async with self._loads:  # max_concurrent_loads
            self.loads_running += 1
            self.loads_peak = max(self.loads_peak, self.loads_running)
            try:
                await self._make_room(entry)
                if entry.state is not ModelState.LOADING:
                    return
                before = rss_bytes()
                if self._frozen(entry):  # load into an instance made after the freeze: what it loads is never frozen
                    self._fresh(entry, loaded=False)
                model = entry.model
                if entry.runner is None:  # registered: its runner (stats, observers, threads) from its first load
                    entry.runner = repo.build_runner(model, entry.settings)
                ready = model.ready or await entry.runner.load()
                if ready and repo.before_ready is not None:  # warmup, graph binding: still LOADING
                    await repo.before_ready(entry)
                if not ready:
                    raise RuntimeError("load() returned without making the model ready")
            except ModelNotReady as exc:  # the budget is full: nothing to evict in time (not the model's fault)
                entry.reason = exc.detail or str(exc)
                if self.metrics is not None:
                    self.metrics.loaded("budget_full", time.perf_counter() - started)
                return
            except Exception as exc:  # noqa: BLE001 - any model failure is reported, never fatal
                logger.exception("Model %s failed to load on demand", _label(entry))
                self._failed(entry, f"load failed: {repo._public(str(exc) or type(exc).__name__)}", started, "failed")
                return
            finally:
                self.loads_running -= 1
            # Walking the model's objects takes a while for a big one: off the loop (no request uses it yet).
            await _in_own_thread(self._measure, entry, before)
            seconds = entry.cold_start = time.perf_counter() - started
            entry.state, entry.reason = ModelState.READY, ""
            entry.last_used = next(_uses)  # just loaded: the most recently used (an explicit load too)
            entry.loads += 1
            if self.metrics is not None:
                self.metrics.loaded("ok", seconds)
            logger.info("Model %s loaded on demand in %.3f s (%s, %s)", _label(entry), seconds,
                        format_size(entry.memory_bytes), entry.memory_source)
        self._trim(exclude=entry)

    def _failed(self, entry: ModelEntry, reason: str, started: float, result: str) -> None:
        self._resident.pop(entry, None)
        entry.state, entry.reason = ModelState.FAILED, reason
        entry.retry_at = time.monotonic() + self.retry_after
        self._fresh(entry)  # the next attempt starts from a new instance
        if self.metrics is not None:
            self.metrics.loaded(result, time.perf_counter() - started)

    async def _make_room(self, entry: ModelEntry) -> None:
        """Evict LRU idle models until ``entry`` fits, then reserve its place (state LOADING)."""
        deadline = time.monotonic() + self.eviction_wait
        while True:
            if entry.state in (ModelState.READY, ModelState.UNAVAILABLE):
                return  # loaded or unloaded meanwhile (an adopt, an explicit unload)
            if self._fits(entry):
                entry.state, entry.reason = ModelState.LOADING, ""
                self._resident[entry] = None
                return
            victim = self._victim(exclude=entry)
            if victim is not None:
                await self._evict(victim, self._why())
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise ModelNotReady(entry.name, f"the model budget is full ({self._limits()}): every resident model "
                                                "is busy or pinned; retry shortly")
            await self._wait_for_change(left)

    def _fits(self, entry: ModelEntry) -> bool:
        if self.max_models and len(self._resident) + 1 > self.max_models:
            return False
        if self.budget:
            return self.bytes_in_use() + self._estimate(entry) <= self.budget or not self._resident
        return True

    def _estimate(self, entry: ModelEntry) -> int:
        """Bytes a model will take: its size when last loaded, else the mean of the measured ones."""
        if entry.memory_bytes:
            return entry.memory_bytes
        known = [e.memory_bytes for e in self._resident if e.memory_bytes]
        return sum(known) // len(known) if known else 0

    def bytes_in_use(self) -> int:
        # What _estimate gives each entry not measured yet, with the mean taken once (not once per entry).
        known = [e.memory_bytes for e in self._resident if e.memory_bytes]
        mean = sum(known) // len(known) if known else 0
        return sum(known) + mean * (len(self._resident) - len(known))

    def _victim(self, exclude: ModelEntry | None = None) -> ModelEntry | None:
        """The least recently used resident model that is idle and unpinned, or None."""
        best = None
        for e in self._resident:
            if (e is exclude or e.pinned or e.in_flight or e.waiting or e.state is not ModelState.READY
                    or e in self._tasks):
                continue
            if best is None or e.last_used < best.last_used:
                best = e
        return best

    async def _evict(self, victim: ModelEntry, reason: str) -> None:
        victim.state = ModelState.UNLOADING  # no new request enters; they wait for a reload instead
        self._resident.pop(victim, None)
        await self._start(victim, self._unload(victim, reason))

    async def _unload(self, victim: ModelEntry, reason: str) -> None:
        await stop_model(victim, when=" on eviction")
        self._fresh(victim)
        victim.state, victim.reason = ModelState.EVICTED, f"evicted: {reason}"
        if self.metrics is not None:
            self.metrics.evictions.labels(reason.split(",")[0]).inc()
        logger.info("Model %s evicted (%s)", _label(victim), reason)

    def _fresh(self, entry: ModelEntry, loaded: bool = True) -> None:
        """Replace a model built from settings with a new, unloaded instance, so that what the old one
        held is freed (a model built in code is kept: its stop hook must free what it holds). Its runner
        goes with it (the new instance gets one at its next load), so nothing keeps the old one."""
        settings = entry.settings
        if settings is None or getattr(entry.model, "settings", None) is not settings:
            return
        frozen = self._frozen(entry)
        repo = self.repository
        try:
            model = build_model(settings)
            if repo.prepare_model is not None and repo.build_runner is not None:
                repo.prepare_model(model, settings)
                runner = None  # made at its next load
            else:
                runner = repo._runner_factory(model, settings)
        except Exception as exc:  # noqa: BLE001 - the next load reports it
            logger.error("Model %s cannot be rebuilt: %s", _label(entry), exc)
            return
        if repo.release_runner is not None and entry.runner is not None:
            repo.release_runner(entry.runner)
        old = entry.model
        entry.model, entry.runner = model, runner
        entry.built_epoch = self._epoch()
        if frozen and loaded:  # frozen with what it loaded: it must go now, or the heap thaws for good
            ref = self.freezer.watch(old)
            del old
            self.freezer.let_go(ref, f"model {_label(entry)} outlived its eviction (a reference cycle)")

    def frozen(self, freezer: Any) -> None:
        """The server froze its heap (serving/heap.py): every registered model gets an instance made
        after the freeze, so that what its loads make is never held by a frozen object. (A load also
        checks this, for an entry that was not registered at the freeze.)"""
        self.freezer = freezer
        for entry in list(self.repository.entries()):
            if entry.state is ModelState.REGISTERED and self._frozen(entry):
                self._fresh(entry, loaded=False)

    def _epoch(self) -> int:
        return self.freezer.epoch if self.freezer is not None else 0

    def _frozen(self, entry: ModelEntry) -> bool:
        """Whether the entry's model instance existed when the heap was frozen (and still is)."""
        return self.freezer is not None and self.freezer.frozen and entry.built_epoch < self.freezer.epoch

    def _trim(self, exclude: ModelEntry | None = None) -> None:
        """After a load measured more than estimated: evict idle LRU models until within the limits."""
        def over() -> bool:
            return bool((self.max_models and len(self._resident) > self.max_models)
                        or (self.budget and self.bytes_in_use() > self.budget))

        while over():
            victim = self._victim(exclude)
            if victim is None:
                return
            victim.state = ModelState.UNLOADING
            self._resident.pop(victim, None)
            self._start(victim, self._unload(victim, self._why()))

    def _why(self) -> str:
        return f"LRU, {self._limits()}"

    def _limits(self) -> str:
        parts = []
        if self.budget:
            parts.append(f"budget {self.budget_label or format_size(self.budget)}")
        if self.max_models:
            parts.append(f"max_loaded_models {self.max_models}")
        return ", ".join(parts)

    def _pulse(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def _wait_for_change(self, timeout: float) -> None:
        """Until a resident model goes idle, a load ends or an unload happens (or ``timeout``)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        waits = [asyncio.ensure_future(self._changed.wait())]
        for e in self._resident:
            if e.in_flight and not e.pinned:
                if e._idle is None or e._idle.is_set():
                    e._idle = asyncio.Event()
                waits.append(asyncio.ensure_future(e._idle.wait()))
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    # -- accounting -------------------------------------------------------------------------------
    def _measure(self, entry: ModelEntry, rss_before: int) -> None:
        """The model's memory: its own figure (``memory_bytes()``), else what its runtime holds
        (arrays, boosters, tensors), else the process's RSS growth over the load."""
        own = getattr(entry.model, "memory_bytes", None)
        size, source = 0, ""
        if callable(own):
            try:
                size, source = int(own()), "model"
            except Exception:  # noqa: BLE001
                size = 0
        if not size:
            size, source = runtime_bytes(entry.model), "runtime"
        if not size and rss_before:
            size, source = max(0, rss_bytes() - rss_before), "rss"
        entry.memory_bytes, entry.memory_source = size, source

    def describe(self, entry: ModelEntry) -> dict[str, Any]:
        """What the repository index shows of a model's residency."""
        out: dict[str, Any] = {"memory": {"bytes": entry.memory_bytes, "source": entry.memory_source or None}}
        if entry.pinned:
            out["pinned"] = True
        if entry.loads:
            out["loads"] = entry.loads
            out["cold_start_seconds"] = round(entry.cold_start, 6)
        return out

    def summary(self) -> dict[str, Any]:
        return {"loaded": len(self._resident), "max_loaded_models": self.max_models, "bytes_in_use": self.bytes_in_use(),
                "memory_budget": self.budget, "loads_running": self.loads_running}



async def _in_own_thread(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a thread that ends with it. A runtime may keep a per-thread buffer for each model
    a thread called, freed only when the model is freed on that same thread or the thread ends:
    XGBoost's ``save_raw`` leaves a copy of the model in one (its Learner's destructor clears only the
    freeing thread's entry). Measured on a pooled thread, every XGBoost load and eviction left ~40 KB."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def deliver(result: Any, error: BaseException | None) -> None:
        if not future.cancelled():
            future.set_result(result) if error is None else future.set_exception(error)

    def run() -> None:
        try:
            result, error = fn(*args), None
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(deliver, result, error)
        except RuntimeError:
            pass  # the loop is closed: nobody waits any more

    threading.Thread(target=run, name="modelport-measure", daemon=True).start()
    return await future


# -- what a runtime holds -------------------------------------------------------------------------
_SKIP = (int, float, bool, type(None), type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
         types.MethodType)  # shared or tiny: not the model's own memory


def runtime_bytes(model: Any, limit: int = 100_000) -> int:
    """Bytes held by what is reachable from ``model`` (each object counted once): the runtime's own
    figures for arrays, boosters and tensors (numpy ``nbytes``, an XGBoost booster's serialized size, a
    LightGBM model's text, torch ``element_size() * nelement()``, sklearn trees' node and value arrays),
    plus ``sys.getsizeof`` of the Python objects around them (an estimator's attributes, dicts, lists)."""
    import sys

    import numpy as np

    seen: set[int] = set()
    total = 0
    stack: list[Any] = [model]
    visited = 0
    while stack and visited < limit:
        obj = stack.pop()
        if isinstance(obj, _SKIP) or id(obj) in seen:
            continue
        seen.add(id(obj))
        visited += 1
        if isinstance(obj, np.ndarray):
            base = obj if obj.base is None else obj.base
            if id(base) not in seen or base is obj:
                seen.add(id(base))
                total += getattr(base, "nbytes", obj.nbytes)
            continue
        if isinstance(obj, (bytes, bytearray, memoryview)):
            total += len(obj)
            continue
        if isinstance(obj, str):
            total += sys.getsizeof(obj)
            continue
        kind = type(obj).__module__ + "." + type(obj).__qualname__
        size = _known_size(obj, kind)
        if size is not None:
            total += size
            continue
        if kind.startswith(("asyncio.", "threading.", "concurrent.", "logging.", "modelport.execution", "_thread.")):
            continue
        try:
            total += sys.getsizeof(obj)
        except TypeError:
            pass
        stack.extend(_children(obj))
    return total


def _known_size(obj: Any, kind: str) -> int | None:
    try:
        if kind == "xgboost.core.Booster":
            return len(obj.save_raw())
        if kind == "lightgbm.basic.Booster":
            return len(obj.model_to_string())
        if kind.startswith("torch.") and hasattr(obj, "element_size") and hasattr(obj, "nelement"):
            return int(obj.element_size() * obj.nelement())
        if kind == "sklearn.tree._tree.Tree":
            state = obj.__getstate__()
            return int(sum(getattr(state.get(k), "nbytes", 0) for k in ("nodes", "values")))
    except Exception:  # noqa: BLE001 - unknown: walk it instead
        return None
    return None


def _children(obj: Any) -> Iterator[Any]:
    if isinstance(obj, dict):
        return iter(list(obj.values())[:10_000])
    if isinstance(obj, (list, tuple, set, frozenset)):
        return iter(list(obj)[:10_000])
    attrs = getattr(obj, "__dict__", None)
    if isinstance(attrs, dict):
        return iter([v for k, v in attrs.items() if k not in ("settings", "_predictor", "predictor_config")])
    return iter(())


class _ResidencyMetrics:
    def __init__(self, residency: Residency, registry: Any):
        from prometheus_client import Counter, Histogram

        self.residency = residency
        self.loads = Counter("modelport_model_loads", "On-demand model loads, by result (ok, failed, budget_full)",
                             ["result"], registry=registry)
        self.evictions = Counter("modelport_model_evictions", "Models unloaded to make room, by reason", ["reason"],
                                 registry=registry)
        self.cold_start = Histogram("modelport_model_cold_start_seconds", "Time from a model's first request to it "
                                    "being ready (eviction, load, warmup)", buckets=_COLD_BUCKETS, registry=registry)
        registry.register(self)

    def loaded(self, result: str, seconds: float) -> None:
        self.loads.labels(result).inc()
        if result == "ok":
            self.cold_start.observe(seconds)

    def collect(self) -> Iterator:
        from prometheus_client.core import GaugeMetricFamily

        r = self.residency
        yield GaugeMetricFamily("modelport_model_memory_bytes_in_use", "Memory held by resident models (measured at load)",
                                value=r.bytes_in_use())
        yield GaugeMetricFamily("modelport_model_memory_budget_bytes", "The memory_budget setting (0: none)", value=r.budget)
        yield GaugeMetricFamily("modelport_models_loaded", "Models resident (loaded or loading)", value=len(r._resident))
        yield GaugeMetricFamily("modelport_models_max_loaded", "The max_loaded_models setting (0: none)", value=r.max_models)
        yield GaugeMetricFamily("modelport_model_loads_running", "Loads running now (bounded by max_concurrent_loads)",
                                value=r.loads_running)
        yield GaugeMetricFamily("modelport_model_loads_running_peak", "The most loads that ran at once",
                                value=r.loads_peak)


def attach(server: Any, settings: Any) -> None:
    """Switch residency on when the settings ask for it (called by the composition root)."""
    budget = parse_size(settings.memory_budget)
    server.repository.residency = None
    if not settings.max_loaded_models and not budget:
        return
    registry = server.metrics.registry if server.metrics is not None else None
    residency = Residency(server.repository, settings.max_loaded_models, budget, settings.max_concurrent_loads,
                          settings.load_retry_after, settings.eviction_wait, registry)
    if isinstance(settings.memory_budget, str):
        residency.budget_label = settings.memory_budget.strip()
    server.repository.residency = residency

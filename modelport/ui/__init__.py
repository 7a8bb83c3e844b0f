"""The web console at ``/ui``: hundreds of models at a glance, a detail view per model, charts, "try it".

The page (``page.py``) is a shell plus ``static/app.js``; the data comes from the read APIs below.
Nothing the console shows leaves without ``modelport.redact`` (secrets at any depth, URL
credentials, paths relative to the models folder). Its buttons call the repository API, so whatever
guards that API guards them: the console adds no way of its own to change anything. Chart history is
sampled by ``history.History`` only while someone has the console open.

Its routes are declared with every other door (``modelport.doors.CONSOLE``), which the controls,
the router and the OpenAPI document read:

- ``public``: the page shell and its static files. With ``api_keys`` on the shell carries no data: the
  page asks for a key and sends it with its own requests.
- ``read``: the JSON APIs (the ``infer`` scope, as the rest of the read-only API).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs

from .._version import __version__
from ..redact import redact, redact_text
from .history import FIELDS, SERVER, History
from .page import render_page

STATIC = Path(__file__).parent / "static"
_ASSETS = {"app.js": b"text/javascript; charset=utf-8", "app.css": b"text/css; charset=utf-8",
           "favicon.svg": b"image/svg+xml"}
_INDEX_FIELDS = ("name", "version", "state", "reason")


# The console's doors are declared with every other door (modelport.doors.CONSOLE); each names the
# Console method that answers it: handler(params, query, allowed) -> response.
HANDLERS = {"ui.page": "page", "ui.static": "asset", "ui.models": "api_models", "ui.model": "api_model",
            "ui.stats": "api_stats", "ui.history": "api_history", "ui.model_history": "api_history"}


class Console:
    """The ``/ui`` route tree, mounted on the REST app by the composition root."""

    def __init__(self, server: Any):
        self.server = server
        self.started = time.time()
        self.history = History(self.counters)

    def close(self) -> None:
        """Stop the chart sampler (the server is stopping)."""
        self.history.stop()

    # -- what is shown ---------------------------------------------------------------------------
    @property
    def root(self) -> str | None:
        """The models folder: paths under it are shown relative to it."""
        return getattr(self.server.repository, "models_dir", None) or getattr(self.server.settings, "model_repository", None)

    @property
    def auth(self) -> bool:
        """True when API keys are configured: the page shell then carries no data."""
        return bool(getattr(getattr(self.server, "controls", None), "keys", None))

    def _index(self) -> tuple[list[dict], str]:
        """The repository index, or (when the models folder cannot be read) the models in memory and why."""
        try:
            return self.server.dataplane.repository_index(), ""
        except Exception as exc:  # noqa: BLE001 - the console renders from memory rather than failing
            items = [{"name": e.name, "version": e.version, "state": e.state.value, "reason": e.reason}
                     for e in self.server.repository.entries()]
            return items, f"The models folder cannot be read ({exc}); showing the models in memory."

    def models(self, allowed: Callable[[str], bool] = lambda name: True) -> tuple[list[dict], str]:
        """A summary of every model the repository knows (loaded or not) that ``allowed`` lets the caller see,
        and a note when the models folder cannot be read."""
        items, note = self._index()
        items = [item for item in items if allowed(item["name"])]
        repository = self.server.repository
        out = []
        for item in items:
            entry = next((e for e in repository.entries_of(item["name"]) if e.version == item.get("version")), None)
            doc: dict[str, Any] = {"name": item["name"], "version": item.get("version"), "state": str(getattr(item["state"], "value", item["state"])),
                                   "reason": item.get("reason") or "", "platform": _platform(entry), "in_flight": 0}
            if entry is not None:
                doc["in_flight"] = entry.in_flight
            # Whatever else the index says (memory, traffic, graph, states to come) is shown as it is.
            doc.update({k: v for k, v in item.items() if k not in _INDEX_FIELDS})
            latest = self.history.latest(item["name"])
            doc["rps"] = latest.get("rps")
            doc["p50_ms"] = latest.get("p50_ms")
            out.append(doc)
        return redact(out, self.root), redact_text(note, self.root)

    def model(self, name: str, version: str | None) -> dict | None:
        """Everything the detail view shows about one model, or None when the repository does not know it."""
        versions, _ = self.models(lambda n: n == name)  # one model's rows: no per-row work for the others
        if not versions:
            return None
        doc = next((m for m in versions if m["version"] == version), versions[-1] if version is None else None)
        if doc is None:
            return None
        doc.update(versions=[m["version"] for m in versions if m["version"] is not None], inputs=[], outputs=[], settings={})
        entry = next((e for e in self.server.repository.entries_of(name) if e.version == doc["version"]), None)
        if entry is not None and entry.model is not None:
            try:
                meta = entry.model.metadata()
                doc.update(inputs=meta.get("inputs", []), outputs=meta.get("outputs", []),
                           platform=meta.get("platform", "") or doc["platform"])
            except Exception as exc:  # noqa: BLE001 - a broken metadata hook is shown, not raised
                doc["reason"] = doc["reason"] or f"metadata failed: {exc}"
        if entry is not None:
            settings: dict[str, Any] = {}
            if entry.settings is not None:
                raw = dataclasses.asdict(entry.settings)
                raw.pop("inputs", None)
                raw.pop("outputs", None)
                settings = _flat(raw)
            runner = entry.runner
            batcher = getattr(runner, "batcher", None)
            settings["batching"] = (f"max_batch_size {batcher.max_batch_size}, max_batch_time {batcher.max_batch_time}s"
                                    if batcher is not None and hasattr(batcher, "max_batch_size") else "off")
            if getattr(runner, "pool", None) is not None:
                settings["worker processes"] = getattr(runner.pool, "workers", "yes")
            doc["settings"] = settings
        doc["stats"] = self.counters().get(name)
        return redact(doc, self.root)

    def server_info(self, allowed: Callable[[str], bool] = lambda name: True) -> dict:
        s = self.server.settings
        dataplane = self.server.dataplane
        ready = dataplane.ready()
        doc: dict[str, Any] = {
            "name": dataplane.server_metadata().get("name"), "version": __version__,
            "extensions": dataplane.server_metadata().get("extensions", []),
            "uptime_s": round(time.time() - self.started, 1), "workers": s.workers, "ready": ready,
            "http_port": self.server.http_port, "grpc_port": self.server.grpc_port,
            "settings": _flat(dataclasses.asdict(s), keep_empty=False),
        }
        if not ready:  # why not: the server's own reason and every model that holds readiness back
            doc["not_ready"] = dataplane.not_ready_because() or "not every model is ready"
            doc["not_ready_models"] = [{"name": e.name, "version": e.version, "state": e.state.value, "reason": e.reason}
                                       for e in self.server.repository.entries() if allowed(e.name) and (
                                       e.state.value not in ("READY", "UNAVAILABLE") or (e.model is not None and not e.model.ready))]
        return redact(doc, self.root)

    def counters(self) -> dict[str, dict]:
        """Cumulative counters per model, read from the metrics registry now (charts turn them into rates)."""
        models: dict[str, dict] = {}

        def slot(name: str) -> dict:
            return models.setdefault(name, {"requests": 0.0, "failures": 0.0, "latency_sum": 0.0, "buckets": {},
                                            "batch_sum": 0.0, "batch_count": 0.0, "queue_sum": 0.0, "queue_count": 0.0,
                                            "in_flight": 0})

        metrics = self.server.metrics
        if metrics is not None:
            for family in metrics.registry.collect():
                name = family.name
                if name not in _FAMILIES:
                    continue
                for sample in family.samples:
                    model = sample.labels.get("model")
                    if model is None:
                        continue
                    if name == "modelport_request_duration_seconds":
                        m = slot(model)
                        if sample.name.endswith("_bucket"):
                            le = sample.labels["le"]
                            m["buckets"][le] = m["buckets"].get(le, 0.0) + sample.value
                        elif sample.name.endswith("_count"):
                            m["requests"] += sample.value
                        elif sample.name.endswith("_sum"):
                            m["latency_sum"] += sample.value
                    elif name == "modelport_request_failures" and sample.name.endswith("_total"):
                        slot(model)["failures"] += sample.value
                    elif name == "modelport_batch_size" and sample.name.endswith(("_sum", "_count")):
                        slot(model)["batch_" + sample.name.rsplit("_", 1)[1]] += sample.value
                    elif name == "modelport_batch_queue_seconds" and sample.name.endswith(("_sum", "_count")):
                        slot(model)["queue_" + sample.name.rsplit("_", 1)[1]] += sample.value
        for model, count in self.server.dataplane.in_flight().items():
            slot(model)["in_flight"] = count
        return models

    # -- routes ----------------------------------------------------------------------------------
    async def __call__(self, door: Any, params: dict, scope: dict, receive: Callable) -> tuple:
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
        if door.kind != "public" or door.name == "ui.page":
            self.history.touch()  # someone is watching: keep the chart history going
        return getattr(self, HANDLERS[door.name])(params, query, self._allowed(scope))

    def _allowed(self, scope: dict) -> Callable[[str], bool]:
        """Which models the caller's key may see (the controls have already checked the key and its scope):
        a key limited to some models sees only those in the lists, not every model's name and numbers."""
        keys = getattr(getattr(self.server, "controls", None), "keys", None)
        if not keys:
            return lambda name: True
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            return keys.authenticate(headers).may_call
        except Exception:  # noqa: BLE001 - no valid key: nothing to see
            return lambda name: False

    def page(self, params: dict, query: dict, allowed: Callable[[str], bool]) -> tuple:
        if self.auth:  # the shell is public: no data in it, the page asks for a key
            boot: dict[str, Any] = {"auth": True}
        else:
            models, note = self.models()
            boot = {"auth": False, "models": models, "note": note, "server": self.server_info()}
        return 200, render_page(boot, __version__).encode(), b"text/html; charset=utf-8", [(b"cache-control", b"no-store")]

    def asset(self, params: dict, query: dict, allowed: Callable[[str], bool]) -> tuple:
        from ..transports.rest.errors import RouteNotFound

        name = params["asset"]
        if name not in _ASSETS:
            raise RouteNotFound("/ui/static/" + name)
        return 200, (STATIC / name).read_bytes(), _ASSETS[name], [(b"cache-control", b"public, max-age=300")]

    def api_models(self, params: dict, query: dict, allowed: Callable[[str], bool]) -> tuple:
        models, note = self.models(allowed)
        return _json({"server": self.server_info(allowed), "models": models, "note": note})

    def api_model(self, params: dict, query: dict, allowed: Callable[[str], bool]) -> tuple:
        from ..errors import ModelNotFound

        doc = self.model(params["model_name"], query.get("version") or None)
        if doc is None:
            raise ModelNotFound(params["model_name"], query.get("version") or None)
        return _json(doc)

    def api_stats(self, params: dict, query: dict, allowed: Callable[[str], bool]) -> tuple:
        models = {name: c for name, c in self.counters().items() if allowed(name)}
        return _json({"time": time.time(), "metrics": self.server.metrics is not None, "models": models})

    def api_history(self, params: dict, query: dict, allowed: Callable[[str], bool]) -> tuple:
        from ..errors import ModelNotFound

        name = params.get("model_name", SERVER)
        if name != SERVER and not self.server.repository.entries_of(name):
            raise ModelNotFound(name, None)
        return _json({"model": name or None, "fields": list(FIELDS), **self.history.series(name)})


def _platform(entry: Any) -> str:
    """A short label for the list (no metadata hook call): the settings' platform, else the class name."""
    if entry is None:
        return ""
    settings = entry.settings
    if settings is not None and settings.platform:
        return settings.platform
    impl = (settings.implementation if settings is not None else None) or (type(entry.model).__name__ if entry.model is not None else "")
    return impl.rsplit(".", 1)[-1]


def _flat(doc: dict, prefix: str = "", keep_empty: bool = False) -> dict[str, Any]:
    """{"parameters": {"extra": {"a": 1}}} -> {"parameters.extra.a": 1}, leaving out empty values."""
    out: dict[str, Any] = {}
    for k, v in doc.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flat(v, key + ".", keep_empty))
        elif keep_empty or v not in (None, "", [], {}):
            out[key] = v
    return out


_FAMILIES = frozenset(("modelport_request_duration_seconds", "modelport_request_failures", "modelport_batch_size",
                       "modelport_batch_queue_seconds"))


def _json(doc: Any) -> tuple:
    from ..wire.v2_json import dumps

    return 200, dumps(doc), b"application/json", [(b"cache-control", b"no-store")]


def mount_console(server: Any) -> Console:
    """Mount the console on the server's REST app (the composition root calls this when enable_ui is on)."""
    from ..doors import CONSOLE

    console = Console(server)
    server.app.mount("/ui", console, CONSOLE)  # its declared doors: read (modelport/doors.py)
    return console


__all__ = ["Console", "HANDLERS", "mount_console"]

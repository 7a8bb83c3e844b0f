"""The web console at ``/ui``: models, their state and metadata, live charts, "try it", the server.

The page is rendered on the server, so the read-only views work with JavaScript off; ``static/app.js``
adds the buttons (which call the repository API, so whatever guards that API guards them), the charts
(polling ``/ui/api/stats``, computed from the server's own metrics registry only when asked) and the
try-it form. Nothing here runs unless someone has the page open.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from .._version import __version__

STATIC = Path(__file__).parent / "static"
_ASSETS = {"app.js": b"text/javascript; charset=utf-8", "app.css": b"text/css; charset=utf-8",
           "favicon.svg": b"image/svg+xml"}
_SECRET_WORDS = ("key", "token", "secret", "password", "credential")


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _redact(doc: dict) -> dict:
    return {k: ("***" if v and any(w in k.lower() for w in _SECRET_WORDS) else v) for k, v in doc.items()}


class Console:
    """The ``/ui`` route tree, mounted on the REST app by the composition root."""

    def __init__(self, server: Any):
        self.server = server
        self.started = time.time()

    # -- data ----------------------------------------------------------------------------------
    def models(self) -> list[dict]:
        """Every model the repository knows (loaded or not), with what the page shows about it."""
        repo = self.server.repository
        by_key = {(e.name, e.version): e for e in repo.entries()}
        out = []
        for item in self.server.dataplane.repository_index():
            entry = by_key.get((item["name"], item.get("version")))
            doc: dict[str, Any] = {"name": item["name"], "version": item.get("version"), "state": item["state"],
                                   "reason": item.get("reason", ""), "inputs": [], "outputs": [], "platform": "",
                                   "settings": {}, "in_flight": 0}
            if entry is not None:
                doc["in_flight"] = entry.in_flight
                if entry.model is not None:
                    try:
                        meta = entry.model.metadata()
                        doc.update(inputs=meta.get("inputs", []), outputs=meta.get("outputs", []),
                                   platform=meta.get("platform", ""))
                    except Exception as exc:  # noqa: BLE001 - a broken metadata hook is shown, not raised
                        doc["reason"] = doc["reason"] or f"metadata failed: {exc}"
                if entry.settings is not None:
                    settings = dataclasses.asdict(entry.settings)
                    settings.pop("inputs", None)
                    settings.pop("outputs", None)
                    params = settings.pop("parameters", {}) or {}
                    settings.update({f"parameters.{k}": v for k, v in params.items() if v not in (None, {}, "")})
                    doc["settings"] = _redact({k: v for k, v in settings.items() if v not in (None, "", [], {})})
                runner = entry.runner
                batcher = getattr(runner, "batcher", None)
                doc["settings"]["batching"] = (f"max_batch_size {batcher.max_batch_size}, max_batch_time {batcher.max_batch_time}s"
                                               if batcher is not None and hasattr(batcher, "max_batch_size") else "off")
                if getattr(runner, "pool", None) is not None:
                    doc["settings"]["worker processes"] = getattr(runner.pool, "workers", "yes")
            out.append(doc)
        return out

    def server_info(self) -> dict:
        s = self.server.settings
        meta = self.server.dataplane.server_metadata()
        return {
            "name": meta.get("name"), "version": __version__, "extensions": meta.get("extensions", []),
            "uptime_s": round(time.time() - self.started, 1), "pid": os.getpid(), "workers": s.workers,
            "ready": self.server.dataplane.ready(), "http_port": self.server.http_port, "grpc_port": self.server.grpc_port,
            "settings": _redact(dataclasses.asdict(s)),
        }

    def stats(self) -> dict:
        """Cumulative counters per model, read from the metrics registry now (the page turns them into rates)."""
        models: dict[str, dict] = {}

        def slot(name: str) -> dict:
            return models.setdefault(name, {"requests": 0.0, "failures": 0.0, "latency_sum": 0.0, "buckets": {},
                                            "batch_sum": 0.0, "batch_count": 0.0, "queue_sum": 0.0, "queue_count": 0.0,
                                            "in_flight": 0})

        metrics = self.server.metrics
        if metrics is not None:
            for family in metrics.registry.collect():
                name = family.name
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
        return {"time": time.time(), "metrics": metrics is not None, "models": models}

    # -- routes --------------------------------------------------------------------------------
    async def __call__(self, method: str, path: str, scope: dict, receive: Callable) -> tuple:
        from ..transports.rest.errors import MethodNotAllowed, RouteNotFound

        if method not in ("GET", "HEAD"):
            raise MethodNotAllowed(method, "GET")
        rest = path[len("/ui"):].strip("/")
        if rest == "":
            return 200, self.page().encode(), b"text/html; charset=utf-8", [(b"cache-control", b"no-store")]
        if rest == "api/models":
            return _json({"server": self.server_info(), "models": self.models()})
        if rest == "api/stats":
            return _json(self.stats())
        if rest.startswith("static/") and rest[len("static/"):] in _ASSETS:
            name = rest[len("static/"):]
            return 200, (STATIC / name).read_bytes(), _ASSETS[name], [(b"cache-control", b"public, max-age=300")]
        raise RouteNotFound(path)

    # -- the page ------------------------------------------------------------------------------
    def page(self) -> str:
        info, models = self.server_info(), self.models()
        rows = []
        for m in models:
            label = m["name"] + (f" v{m['version']}" if m["version"] else "")
            state = m["state"].lower()
            reason = f'<div class="reason">{_esc(m["reason"])}</div>' if m["reason"] and m["state"] != "READY" else ""
            ios = " ".join(f'<code>{_esc(i.get("name"))}</code> {_esc(i.get("datatype"))} {_esc(i.get("shape"))}' for i in m["inputs"])
            rows.append(
                f'<tr data-model="{_esc(m["name"])}"><td><a href="#model-{_esc(m["name"])}">{_esc(label)}</a></td>'
                f'<td><span class="state {state}">{_esc(m["state"])}</span>{reason}</td><td>{ios or "—"}</td>'
                f'<td class="actions"></td></tr>')
        details = []
        for m in models:
            inputs = "".join(f'<tr><td><code>{_esc(i.get("name"))}</code></td><td>{_esc(i.get("datatype"))}</td>'
                             f'<td>{_esc(i.get("shape"))}</td></tr>' for i in m["inputs"]) or '<tr><td colspan="3">none declared</td></tr>'
            outputs = "".join(f'<tr><td><code>{_esc(o.get("name"))}</code></td><td>{_esc(o.get("datatype"))}</td>'
                              f'<td>{_esc(o.get("shape"))}</td></tr>' for o in m["outputs"]) or '<tr><td colspan="3">none declared</td></tr>'
            settings = "".join(f"<tr><td>{_esc(k)}</td><td><code>{_esc(json.dumps(v) if not isinstance(v, str) else v)}</code></td></tr>"
                               for k, v in m["settings"].items()) or '<tr><td colspan="2">defaults</td></tr>'
            details.append(f"""
<section class="model" id="model-{_esc(m['name'])}" data-model="{_esc(m['name'])}">
  <h2>{_esc(m['name'])} <span class="state {m['state'].lower()}">{_esc(m['state'])}</span>
      <small>{_esc(m['platform'])}</small></h2>
  {f'<p class="reason">{_esc(m["reason"])}</p>' if m['reason'] and m['state'] != 'READY' else ''}
  <div class="grid">
    <div><h3>Inputs</h3><table class="io"><tr><th>name</th><th>datatype</th><th>shape</th></tr>{inputs}</table>
         <h3>Outputs</h3><table class="io"><tr><th>name</th><th>datatype</th><th>shape</th></tr>{outputs}</table>
         <h3>Settings in effect</h3><table class="kv">{settings}</table></div>
    <div class="live"><h3>Live</h3><div class="charts" data-model="{_esc(m['name'])}">
         <p class="nojs">Charts need JavaScript.</p></div></div>
  </div>
  <div class="try" data-model="{_esc(m['name'])}"><h3>Try it</h3><p class="nojs">The request form needs JavaScript.</p></div>
</section>""")
        settings = "".join(f"<tr><td>{_esc(k)}</td><td><code>{_esc(v)}</code></td></tr>" for k, v in info["settings"].items())
        boot = json.dumps({"models": models, "server": info}).replace("</", "<\\/")
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>modelport console</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/ui/static/favicon.svg"><link rel="stylesheet" href="/ui/static/app.css"></head>
<body class="nojs-body">
<header><h1>modelport <small>{_esc(info['version'])}</small></h1>
<nav><a href="#models">Models</a> <a href="#server">Server</a> <a href="/docs">API docs</a> <a href="/metrics">Metrics</a></nav>
<span id="ready" class="state {'ready' if info['ready'] else 'unavailable'}">{'server ready' if info['ready'] else 'server not ready'}</span></header>
<noscript><p class="banner">JavaScript is off: this page shows the state when it was loaded. Reload to refresh;
load/unload buttons, live charts and "try it" need JavaScript.</p></noscript>
<main>
<section id="models"><h2>Models</h2>
<table class="models"><thead><tr><th>model</th><th>state</th><th>inputs</th><th></th></tr></thead>
<tbody>{''.join(rows) or '<tr><td colspan="4">No models.</td></tr>'}</tbody></table></section>
{''.join(details)}
<section id="server"><h2>Server</h2>
<table class="kv"><tr><td>name</td><td>{_esc(info['name'])}</td></tr><tr><td>version</td><td>{_esc(info['version'])}</td></tr>
<tr><td>uptime</td><td id="uptime">{info['uptime_s']:.0f} s</td></tr><tr><td>process</td><td>pid {info['pid']}, {info['workers']} worker(s)
{'(this page shows the worker that answered)' if info['workers'] > 1 else ''}</td></tr>
<tr><td>ports</td><td>HTTP {_esc(info['http_port'])}, gRPC {_esc(info['grpc_port'] or 'off')}</td></tr>
<tr><td>extensions</td><td>{_esc(', '.join(info['extensions']))}</td></tr></table>
<details><summary>Settings in effect</summary><table class="kv">{settings}</table></details></section>
</main>
<script id="boot" type="application/json">{boot}</script>
<script src="/ui/static/app.js"></script>
</body></html>"""


def _json(doc: Any) -> tuple:
    from ..wire.v2_json import dumps

    return 200, dumps(doc), b"application/json", [(b"cache-control", b"no-store")]


def mount_console(server: Any) -> Console:
    """Mount the console on the server's REST app (the composition root calls this when enable_ui is on)."""
    from ..doors import CONSOLE

    console = Console(server)
    server.app.mount("/ui", console, CONSOLE)  # its declared doors: read (modelport/doors.py)
    return console


__all__ = ["Console", "mount_console"]

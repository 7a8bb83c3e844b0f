"""The console's page: a shell that ``static/app.js`` fills in from the read APIs.

With API keys off the page carries its first data in a boot block (no second round trip), and a
``<noscript>`` table of the models for a browser without JavaScript. With keys on it carries nothing
but the shell: the script asks for a key first. Every value comes already redacted.
"""

from __future__ import annotations

import html
import json
from typing import Any

_NOSCRIPT_ROWS = 200


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _noscript(boot: dict) -> str:
    models = boot.get("models")
    if models is None:
        return "<noscript><p class=\"banner\">This console needs JavaScript when the server asks for an API key.</p></noscript>"
    rows = "".join(
        f'<tr data-model="{_esc(m["name"])}"><td>{_esc(m["name"])}{(" v" + _esc(m["version"])) if m.get("version") else ""}</td>'
        f'<td><span class="state {_esc(str(m["state"]).lower())}">{_esc(m["state"])}</span></td>'
        f'<td class="reason">{_esc(m["reason"]) if m["state"] != "READY" else ""}</td><td>{_esc(m.get("platform") or "")}</td></tr>'
        for m in models[:_NOSCRIPT_ROWS])
    more = f"<p>{len(models) - _NOSCRIPT_ROWS} more models: search and paging need JavaScript.</p>" if len(models) > _NOSCRIPT_ROWS else ""
    return f"""<noscript><p class="banner">JavaScript is off: this list shows the state when the page was loaded.
Reload to refresh; search, details, buttons, charts and "try it" need JavaScript.</p>
<main><table class="models"><thead><tr><th>model</th><th>state</th><th>reason</th><th>runtime</th></tr></thead>
<tbody>{rows or '<tr><td colspan="4">No models.</td></tr>'}</tbody></table>{more}</main></noscript>"""


def render_page(boot: dict, version: str) -> str:
    data = json.dumps(boot).replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>modelport console</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/ui/static/favicon.svg"><link rel="stylesheet" href="/ui/static/app.css"></head>
<body>
<header><h1><a href="#/">modelport</a> <small>{_esc(version)}</small></h1>
<nav><a href="#/" data-nav="models">Models</a><a href="#/server" data-nav="server">Server</a><a href="/docs">API docs</a><a href="/metrics">Metrics</a></nav>
<a id="ready" class="state" href="#/server" hidden></a><button id="key-button" type="button" hidden>API key</button></header>
{_noscript(boot)}
<div id="app" hidden>
<p id="note" class="banner" hidden></p>
<section id="keygate" class="card" hidden><h2>This server asks for an API key</h2>
<p class="muted">The key stays in this browser tab (sessionStorage) and is sent as <code>Authorization: Bearer</code>
with the console's requests. Any key with the <code>infer</code> scope reads the console; loading and unloading need <code>admin</code>.</p>
<form id="key-form"><input id="key-input" type="password" autocomplete="off" placeholder="API key" aria-label="API key">
<button class="primary" type="submit">Use this key</button> <button id="key-forget" type="button">Forget the key</button></form>
<p id="key-error" class="reason"></p></section>
<main>
<section id="view-models" hidden>
<div class="toolbar"><input id="search" type="search" placeholder="Search models" aria-label="Search models">
<div id="chips" role="group" aria-label="Filter by state"></div><span class="grow"></span>
<button id="load-shown" type="button" hidden></button></div>
<table class="models"><thead><tr><th class="c-name">model</th><th class="c-state">state</th><th>reason</th><th class="c-plat">runtime</th>
<th class="c-num">memory</th><th class="c-num">req/s</th><th class="c-num">p50 ms</th><th class="c-act"></th></tr></thead><tbody id="rows"></tbody></table>
<div class="pager"><button id="prev" type="button" aria-label="Previous page">‹</button><span id="page-info"></span>
<button id="next" type="button" aria-label="Next page">›</button></div>
</section>
<section id="view-model" hidden></section>
<section id="view-server" hidden></section>
</main></div>
<dialog id="confirm"><form method="dialog"><p id="confirm-text"></p>
<div class="right"><button value="cancel" type="submit">Cancel</button> <button id="confirm-ok" class="danger" value="ok" type="submit">OK</button></div></form></dialog>
<script id="boot" type="application/json">{data}</script>
<script src="/ui/static/app.js"></script>
</body></html>"""


__all__ = ["render_page"]

// modelport console: the model list (search, state filter, pages that fit the window), a detail view per
// model (metadata, settings, stats, charts from the server's history, try it) and the server view.
// No build, no dependencies. Every fetch carries the API key the operator entered (sessionStorage).
"use strict";
(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "onclick") e.addEventListener("click", v); else if (k === "text") e.textContent = v; else e.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
    return e;
  };
  const put = (node, ...kids) => node.replaceChildren(...kids.filter(k => k !== null && k !== undefined && k !== false));
  const enc = s => encodeURIComponent(s).replace(/['()*!]/g, c => "%" + c.charCodeAt(0).toString(16).toUpperCase());
  const boot = JSON.parse($("#boot").textContent);
  const KEY = "modelport.console.key";
  const BUSY = new Set(["LOADING", "UNLOADING"]);
  const ROW_H = 33;

  let models = boot.models || [], server = boot.server || null, note = boot.note || "";
  const filter = { q: "", state: "" };
  let page = 0, view = "", timer = null;

  // -- small helpers -------------------------------------------------------------------------------
  function toast(text) {
    const t = el("div", { class: "toast", role: "status", text });
    document.body.append(t);
    setTimeout(() => t.remove(), 4000);
  }
  const stateClass = s => "state " + String(s).toLowerCase().replace(/[^a-z_-]/g, "");
  const badge = s => el("span", { class: stateClass(s), text: s });
  function fmtBytes(n) {
    if (n === null || n === undefined || isNaN(n)) return "";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + " " + units[i];
  }
  const fmtNum = (v, d) => v === null || v === undefined ? "" : v.toFixed(d);
  function memoryOf(m) {  // the index's memory figure: residency's {memory: {bytes, source}}, or a *bytes number
    if (m.memory && typeof m.memory.bytes === "number") return m.memory.bytes || null;  // 0: not measured yet
    if (typeof m.memory_bytes === "number") return m.memory_bytes;
    const k = Object.keys(m).find(k => /bytes$/.test(k) && typeof m[k] === "number");
    return k ? m[k] : null;
  }
  const label = m => m.name + (m.version ? " v" + m.version : "");
  const modelHash = m => "#/m/" + enc(m.name) + (m.version ? "?version=" + enc(m.version) : "");

  // -- the API key ---------------------------------------------------------------------------------
  function authHeaders(extra) {
    const key = sessionStorage.getItem(KEY);
    return Object.assign({}, extra || {}, key ? { Authorization: "Bearer " + key } : {});
  }
  async function api(path, opts) {
    const r = await fetch(path, Object.assign({ cache: "no-store" }, opts || {}, { headers: authHeaders((opts || {}).headers) }));
    if (r.status === 401) {  // no key, or a wrong one: forget it and ask
      sessionStorage.removeItem(KEY);
      keyButton();
      showKeygate(await errorText(r));
    }
    return r;
  }
  async function errorText(r) {
    try { return (await r.clone().json()).error || r.statusText; } catch (e) { return r.statusText; }
  }
  function showKeygate(message) {
    $("#keygate").hidden = false;
    $("#key-error").textContent = message || "";
    $("#key-input").focus();
  }
  $("#key-form").addEventListener("submit", ev => {
    ev.preventDefault();
    const key = $("#key-input").value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY, key);
    $("#key-input").value = "";
    $("#keygate").hidden = true;
    keyButton();
    loadModels().then(route);
  });
  $("#key-forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    keyButton();
    if (boot.auth) { models = []; server = null; render(); showKeygate(""); }
  });
  function keyButton() {
    const b = $("#key-button"), has = !!sessionStorage.getItem(KEY);
    b.hidden = !boot.auth && !has;
    b.textContent = has ? "API key ✓" : "API key";
  }
  $("#key-button").addEventListener("click", () => showKeygate(""));

  // -- confirmation ---------------------------------------------------------------------------------
  function confirmAction(text, ok) {
    const dialog = $("#confirm");
    $("#confirm-text").textContent = text;
    $("#confirm-ok").textContent = ok;
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise(resolve => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
  }

  // -- data -------------------------------------------------------------------------------------------
  async function loadModels() {
    let r;
    try { r = await api("/ui/api/models"); } catch (e) { return; }  // restarting: the next poll tries again
    if (!r.ok) return;
    const doc = await r.json();
    models = doc.models; server = doc.server; note = doc.note || "";
    render();
  }

  async function act(m, verb) {
    const r = await api(`/v2/repository/models/${enc(m.name)}/${verb}`, { method: "POST" });
    toast(r.ok ? `${m.name}: ${verb === "unload" ? "unloaded" : "loaded"}` : `${m.name}: ${verb} failed (${r.status}): ${await errorText(r)}`);
    return r.ok;
  }

  function buttons(m, after) {
    const ready = m.state === "READY", busy = BUSY.has(m.state);
    const run = verb => async ev => {
      const cell = ev.currentTarget.closest("td, .actions");
      if (verb === "unload" && !(await confirmAction(`Unload ${label(m)}? Requests to it fail until it is loaded again.`, "Unload"))) return;
      cell.querySelectorAll("button").forEach(b => { b.disabled = true; });
      await act(m, verb);
      await loadModels();
      if (after) after();
    };
    return [
      el("button", { "data-action": ready ? "reload" : "load", disabled: busy, onclick: run("load") }, ready ? "Reload" : "Load"),
      el("button", { "data-action": "unload", class: "danger-text", disabled: busy || !ready, onclick: run("unload") }, "Unload"),
    ];
  }

  // -- the list ---------------------------------------------------------------------------------------
  const rank = s => s === "FAILED" ? 0 : BUSY.has(s) ? 1 : 2;
  function filtered() {
    const q = filter.q.toLowerCase();
    return models
      .filter(m => (!filter.state || m.state === filter.state) &&
        (!q || m.name.toLowerCase().includes(q) || (m.platform || "").toLowerCase().includes(q) || (m.version || "").includes(q)))
      .sort((a, b) => rank(a.state) - rank(b.state) || a.name.localeCompare(b.name));
  }
  function pageSize() {
    const table = $("table.models", $("#view-models"));
    const top = table.getBoundingClientRect().top + window.scrollY + ROW_H;  // below the header row
    return Math.max(5, Math.floor((window.innerHeight - top - 56) / ROW_H));
  }

  function renderChips() {
    const counts = {};
    for (const m of models) counts[m.state] = (counts[m.state] || 0) + 1;
    const states = Object.keys(counts).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    const chip = (state, ...kids) => el("button", { type: "button", class: "chip" + (filter.state === state ? " on" : ""), "data-state": state,
      onclick: () => { filter.state = filter.state === state && state ? "" : state; page = 0; renderList(); } }, ...kids);
    $("#chips").replaceChildren(chip("", `All ${models.length}`),
      ...states.map(s => chip(s, el("span", { class: stateClass(s) + " dot" }), `${s.charAt(0) + s.slice(1).toLowerCase()} ${counts[s]}`)));
  }

  function renderList() {
    renderChips();
    const shown = filtered(), size = pageSize();
    const pages = Math.max(1, Math.ceil(shown.length / size));
    page = Math.min(page, pages - 1);
    const slice = shown.slice(page * size, (page + 1) * size);
    $("#rows").replaceChildren(...(slice.length ? slice.map(row) :
      [el("tr", {}, el("td", { colspan: "8", class: "muted", text: models.length ? "No model matches." : "No models." }))]));
    $("#page-info").textContent = shown.length ? `${page * size + 1}–${page * size + slice.length} of ${shown.length}` : "0 of 0";
    $("#prev").disabled = page === 0;
    $("#next").disabled = page >= pages - 1;
    const loadable = shown.filter(m => m.state !== "READY" && !BUSY.has(m.state));
    const bulk = $("#load-shown");
    bulk.hidden = loadable.length < 2;
    bulk.textContent = `Load ${loadable.length} shown`;
    bulk.onclick = () => loadMany(loadable);
  }

  function row(m) {
    const mem = memoryOf(m);
    return el("tr", { "data-model": m.name, "data-version": m.version || "" },
      el("td", { class: "c-name" }, el("a", { href: modelHash(m), text: m.name }), m.version ? el("small", { text: " v" + m.version }) : null),
      el("td", {}, badge(m.state)),
      el("td", { class: "reason", title: m.state !== "READY" ? m.reason : "", text: m.state !== "READY" ? m.reason : "" }),
      el("td", { class: "muted", text: m.platform || "" }),
      el("td", { class: "c-num", text: mem === null ? "" : fmtBytes(mem) }),
      el("td", { class: "c-num", text: m.rps ? fmtNum(m.rps, 1) : "" }),
      el("td", { class: "c-num", text: fmtNum(m.p50_ms, 2) }),
      el("td", { class: "c-act" }, ...buttons(m)));
  }

  async function loadMany(list) {
    if (!(await confirmAction(`Load ${list.length} models? Each one takes memory and start-up time.`, `Load ${list.length}`))) return;
    let ok = 0;
    const queue = list.slice();
    const worker = async () => { while (queue.length) { const m = queue.shift(); const r = await api(`/v2/repository/models/${enc(m.name)}/load`, { method: "POST" }); if (r.ok) ok++; } };
    await Promise.all([worker(), worker(), worker()]);
    toast(`${ok} of ${list.length} models loaded`);
    await loadModels();
  }

  $("#search").addEventListener("input", ev => { filter.q = ev.target.value; page = 0; renderList(); });
  $("#prev").addEventListener("click", () => { page--; renderList(); });
  $("#next").addEventListener("click", () => { page++; renderList(); });
  window.addEventListener("resize", () => { if (view === "models") renderList(); });

  // -- charts -----------------------------------------------------------------------------------------
  const CHARTS = [
    ["rps", "requests/s", [["rps", "#2563eb"]], v => v.toFixed(1)],
    ["errors", "errors %", [["errors_pct", "#cf222e"]], v => v.toFixed(1) + "%"],
    ["latency", "latency ms (p50 / p99)", [["p50_ms", "#2563eb"], ["p99_ms", "#cf222e"]], v => v.toFixed(2)],
    ["batch", "batch size", [["batch", "#2563eb"]], v => v.toFixed(1)],
    ["in_flight", "in flight", [["in_flight", "#8250df"]], v => v.toFixed(0)],
  ];

  function chartBoxes() {
    return el("div", { class: "charts" }, ...CHARTS.map(([key, title]) => el("div", { class: "chart", "data-chart": key },
      el("div", { class: "t" }, el("span", { text: title }), el("span", { class: "v", text: "–" })),
      el("canvas", { height: "80" }), el("div", { class: "axis" }, el("span", { class: "from" }), el("span", { text: "now" })))));
  }

  function draw(canvas, t, lines) {
    const ratio = window.devicePixelRatio || 1, w = canvas.clientWidth || 300, h = 80;
    canvas.width = w * ratio; canvas.height = h * ratio;
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    ctx.clearRect(0, 0, w, h);
    const all = lines.flatMap(l => l.values.filter(v => v !== null));
    const top = niceTop(Math.max(0, ...all));
    const left = 34, bottom = h - 2, height = h - 10;
    ctx.font = "10px system-ui, sans-serif"; ctx.fillStyle = "#656d76"; ctx.strokeStyle = "#eaeef2"; ctx.lineWidth = 1;
    for (const f of [0, 0.5, 1]) {
      const y = Math.round(bottom - f * height) + 0.5;
      ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(w, y); ctx.stroke();
      ctx.fillText(short(top * f), 0, Math.min(h - 2, y + 3));
    }
    const n = t.length;
    if (n < 2) return;
    const t0 = t[0], span = Math.max(1e-9, t[n - 1] - t0);
    for (const line of lines) {
      ctx.strokeStyle = line.color; ctx.lineWidth = 1.5; ctx.beginPath();
      let pen = false;
      const dots = [];
      line.values.forEach((v, i) => {
        if (v === null) { pen = false; return; }
        const x = left + ((t[i] - t0) / span) * (w - left), y = bottom - (v / top) * height;
        if (pen) ctx.lineTo(x, y); else { ctx.moveTo(x, y); pen = true; }
        const alone = (i === 0 || line.values[i - 1] === null) && (i === n - 1 || line.values[i + 1] === null);
        if (alone) dots.push([x, y]);  // a sample with no neighbour still shows
      });
      ctx.stroke();
      ctx.fillStyle = line.color;
      for (const [x, y] of dots) { ctx.beginPath(); ctx.arc(x, y, 2, 0, 2 * Math.PI); ctx.fill(); }
    }
  }
  function niceTop(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v))), m = v / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }
  const short = v => v >= 1000 ? (v / 1000).toFixed(v >= 10000 ? 0 : 1) + "k" : v >= 10 || v === 0 ? v.toFixed(0) : v.toPrecision(2);

  async function drawHistory(box, name) {
    let r;
    try { r = await api("/ui/api/history" + (name ? "/" + enc(name) : "")); } catch (e) { return; }
    if (!r.ok || !box.isConnected) return;
    const doc = await r.json();
    const seconds = doc.t.length > 1 ? doc.t[doc.t.length - 1] - doc.t[0] : 0;
    const since = !seconds ? "" : seconds < 90 ? `−${Math.round(seconds)} s` : `−${Math.round(seconds / 60)} min`;
    for (const [key, , fields, fmt] of CHARTS) {
      const chart = $(`[data-chart="${key}"]`, box);
      const lines = fields.map(([f, color]) => ({ values: doc[f], color }));
      draw($("canvas", chart), doc.t, lines);
      $(".from", chart).textContent = since;
      const latest = lines.map(l => l.values[l.values.length - 1]).filter(v => v !== null && v !== undefined);
      $(".v", chart).textContent = latest.length ? latest.map(fmt).join(" / ") : "–";
    }
  }

  // -- the detail view ---------------------------------------------------------------------------------
  function kv(pairs) {
    const rows = pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
      .map(([k, v]) => el("tr", {}, el("td", { text: k }), el("td", {}, el("code", { text: typeof v === "string" ? v : JSON.stringify(v) }))));
    return el("table", { class: "kv" }, ...(rows.length ? rows : [el("tr", {}, el("td", { class: "muted", text: "none" }))]));
  }
  function kvGrid(pairs) {
    return el("div", { class: "kvgrid" }, ...pairs.map(([k, v]) => el("div", {}, el("span", { class: "k", text: k }),
      el("code", { text: typeof v === "string" ? v : JSON.stringify(v) }))));
  }
  function ioTable(list) {
    return el("table", { class: "io" }, el("tr", {}, el("th", { text: "name" }), el("th", { text: "datatype" }), el("th", { text: "shape" })),
      ...(list.length ? list.map(i => el("tr", {}, el("td", {}, el("code", { text: i.name })), el("td", { text: i.datatype || "" }),
        el("td", { text: JSON.stringify(i.shape || []) }))) : [el("tr", {}, el("td", { colspan: "3", class: "muted", text: "none declared" }))]));
  }

  async function renderModel(name, version) {
    const section = $("#view-model");
    let r;
    try { r = await api(`/ui/api/models/${enc(name)}` + (version ? "?version=" + enc(version) : "")); } catch (e) { return; }
    if (view !== "model") return;
    if (!r.ok) {
      section.replaceChildren(el("p", {}, el("a", { href: "#/", text: "← All models" })), el("p", { class: "reason", text: `${name}: ${await errorText(r)}` }));
      return;
    }
    const m = await r.json();
    const detail = `/ui/api/models/${enc(name)}` + (version ? "?version=" + enc(version) : "");
    const charts = chartBoxes();
    const summary = el("div", {}, summaryOf(m));
    const versions = m.versions.length > 1 ? el("select", { "aria-label": "version" }, ...m.versions.map(v => el("option", { value: v, selected: v === m.version }, "version " + v))) : null;
    if (versions) versions.addEventListener("change", () => { location.hash = modelHash({ name: m.name, version: versions.value }); });
    put(section,
      el("p", { class: "crumbs" }, el("a", { href: "#/", text: "← All models" })),
      el("div", { class: "title" }, el("h2", { text: m.name }), badge(m.state), m.version ? el("small", { text: "version " + m.version }) : null,
        versions, el("span", { class: "muted", text: m.platform || "" }), el("span", { class: "grow" }),
        el("span", { class: "actions" }, ...buttons(m, () => renderModel(name, version)))),
      m.state !== "READY" && m.reason ? el("p", { class: "reason box", text: m.reason }) : null,
      el("div", { class: "grid" },
        el("div", {},
          el("h3", { text: "Summary" }), summary,
          el("h3", { text: "Inputs" }), ioTable(m.inputs), el("h3", { text: "Outputs" }), ioTable(m.outputs),
          el("h3", { text: "Settings in effect" }), kv(Object.entries(m.settings))),
        el("div", {}, el("h3", { text: "Last minutes" }), charts, el("div", { class: "try", "data-model": m.name }))));
    setupTry($(".try", section), m);
    drawHistory(charts, m.name);
    clearInterval(timer);
    let tick = 0;
    timer = setInterval(async () => {
      if (document.hidden || !charts.isConnected) return;
      drawHistory(charts, m.name);
      if (++tick % 3) return;
      let fresh;
      try { const rr = await api(detail); if (!rr.ok) return; fresh = await rr.json(); } catch (e) { return; }
      if (!summary.isConnected) return;
      if (fresh.state !== m.state) renderModel(name, version); else put(summary, summaryOf(fresh));
    }, 2000);
  }

  function summaryOf(m) {
    const s = m.stats || {};
    const known = new Set(["name", "version", "state", "reason", "platform", "in_flight", "rps", "p50_ms", "versions", "inputs", "outputs", "settings", "stats"]);
    const extra = Object.keys(m).filter(k => !known.has(k)).map(k => [k, /bytes$/.test(k) && typeof m[k] === "number" ? fmtBytes(m[k]) : m[k]]);
    return kv([["state", m.state], ["in flight", String(m.in_flight)], ["requests", s.requests !== undefined ? String(s.requests) : ""],
      ["failures", s.failures !== undefined ? String(s.failures) : ""],
      ["mean latency", s.requests ? (1000 * s.latency_sum / s.requests).toFixed(2) + " ms" : ""], ...extra]);
  }

  // -- try it ------------------------------------------------------------------------------------------
  function example(spec) {
    const shape = (spec.shape && spec.shape.length ? spec.shape : [-1]).map(d => (d < 0 ? 1 : d));
    const n = shape.reduce((a, b) => a * b, 1);
    const dt = spec.datatype || "FP32";
    const value = i => dt === "BYTES" ? "I love this" : dt === "BOOL" ? i % 2 === 0 : /INT/.test(dt) ? i % 3 : +(0.5 + 0.25 * (i % 8)).toFixed(2);
    return { shape, data: Array.from({ length: Math.min(n, 256) }, (_, i) => value(i)) };
  }
  function rows(shape, data) {
    if (shape.length < 2) return data;
    const width = data.length / shape[0];
    return Array.from({ length: shape[0] }, (_, i) => data.slice(i * width, (i + 1) * width));
  }

  function setupTry(box, m) {
    box.replaceChildren(el("h3", { text: "Try it" }));
    if (m.state !== "READY") {  // nothing to send to: say why instead of offering a button that fails
      box.append(el("p", { class: "muted", text: `${m.name} is ${m.state.toLowerCase()}: load it to try a request.` }));
      return;
    }
    const hasForm = m.inputs.length > 0;
    const mode = el("select", { "aria-label": "request kind" },
      ...(hasForm ? [el("option", { value: "form" }, "V2 form (declared inputs)")] : []),
      el("option", { value: "v2json" }, "V2 JSON"), el("option", { value: "v1json" }, "V1 JSON"));
    const form = el("div", { class: "form" });
    for (const spec of m.inputs) {
      const ex = example(spec);
      form.append(el("div", { class: "field", "data-input": spec.name },
        el("label", { text: `${spec.name} · ${spec.datatype} · declared shape ${JSON.stringify(spec.shape)}` }),
        el("input", { class: "shape", value: JSON.stringify(ex.shape), "aria-label": spec.name + " shape" }),
        el("textarea", { class: "data", rows: "2", "aria-label": spec.name + " data" }, JSON.stringify(ex.data))));
    }
    const editor = el("textarea", { class: "editor", rows: "6", "aria-label": "request body" });
    const v2body = () => ({ inputs: m.inputs.map(spec => {
      const f = $(`[data-input="${CSS.escape(spec.name)}"]`, form);
      return { name: spec.name, datatype: spec.datatype, shape: JSON.parse($(".shape", f).value), data: JSON.parse($(".data", f).value) };
    }) });
    const v1example = () => hasForm ? { instances: rows(example(m.inputs[0]).shape, example(m.inputs[0]).data) } : { instances: [[1, 2, 3, 4]] };
    const showMode = () => {
      const v = mode.value;
      form.hidden = v !== "form";
      editor.hidden = v === "form";
      if (v === "v2json") editor.value = JSON.stringify(hasForm ? v2body() : { inputs: [] }, null, 1);
      if (v === "v1json") editor.value = JSON.stringify(v1example(), null, 1);
    };
    mode.addEventListener("change", showMode);
    const out = el("pre", { class: "response", hidden: true });
    const meta = el("div", { class: "meta" });
    const curl = el("pre", { class: "curl", hidden: true });
    const version = m.version ? `/versions/${enc(m.version)}` : "";
    const request = () => {
      const v1 = mode.value === "v1json";
      const path = v1 ? `/v1/models/${enc(m.name)}:predict` : `/v2/models/${enc(m.name)}${version}/infer`;
      const body = mode.value === "form" ? JSON.stringify(v2body()) : JSON.stringify(JSON.parse(editor.value));
      return { path, body };
    };
    const send = el("button", { class: "primary", "data-action": "send", onclick: async () => {
      let req;
      try { req = request(); } catch (e) { meta.textContent = "Not valid JSON: " + e.message; return; }
      send.disabled = true;
      const t0 = performance.now();
      try {
        const r = await api(req.path, { method: "POST", headers: { "Content-Type": "application/json" }, body: req.body });
        const ms = performance.now() - t0;
        const text = await r.text();
        let shown = text;
        try { shown = JSON.stringify(JSON.parse(text), null, 1); } catch (e) { /* not JSON */ }
        meta.textContent = `HTTP ${r.status} · ${ms.toFixed(1)} ms`;
        meta.dataset.status = r.status;
        out.textContent = shown; out.hidden = false;
      } catch (e) {
        meta.textContent = "Request failed: " + e.message;
      } finally { send.disabled = false; }
    } }, "Send");
    const copy = el("button", { "data-action": "curl", onclick: async () => {
      let req;
      try { req = request(); } catch (e) { meta.textContent = "Not valid JSON: " + e.message; return; }
      // The key itself never goes into the page's text: the command reads it from the environment.
      const auth = sessionStorage.getItem(KEY) ? ` -H "Authorization: Bearer $MODELPORT_API_KEY"` : "";
      const text = `curl -X POST '${location.origin}${req.path}'${auth} -H 'Content-Type: application/json' -d '${req.body.replace(/'/g, "'\\''")}'`;
      curl.textContent = text; curl.hidden = false;
      try { await navigator.clipboard.writeText(text); toast("curl command copied"); } catch (e) { toast("curl command shown below"); }
    } }, "Copy as curl");
    box.append(el("div", { class: "field" }, mode), form, editor, el("div", {}, send, copy), meta, out, curl);
    showMode();
  }

  // -- the server view ------------------------------------------------------------------------------
  function renderServer() {
    const section = $("#view-server");
    if (!server) { section.replaceChildren(); return; }
    const charts = chartBoxes();
    const reasons = server.ready ? el("p", { class: "ok", text: "Ready: every model the server was asked to serve is ready." })
      : el("div", { class: "box reason" }, el("p", { text: "Not ready: " + (server.not_ready || "") }),
        el("ul", {}, ...(server.not_ready_models || []).map(m => el("li", {}, el("a", { href: modelHash(m), text: label(m) }), ` ${m.state}${m.reason ? ": " + m.reason : ""}`))));
    put(section,
      el("div", { class: "title" }, el("h2", { text: "Server" }), badge(server.ready ? "READY" : "NOT READY")), reasons,
      el("div", { class: "grid" },
        el("div", {}, el("h3", { text: "This server" }),
          kv([["name", server.name], ["version", server.version], ["uptime", Math.round(server.uptime_s) + " s"],
            ["workers", server.workers + (server.workers > 1 ? " (this page shows the worker that answered)" : "")],
            ["ports", `HTTP ${server.http_port}, gRPC ${server.grpc_port || "off"}`], ["extensions", server.extensions.join(", ")]]),
        ),
        el("div", {}, el("h3", { text: "Last minutes (all models)" }), charts)),
      el("h3", { text: "Settings in effect" }), kvGrid(Object.entries(server.settings)));
    drawHistory(charts, "");
    clearInterval(timer);
    timer = setInterval(() => { if (!document.hidden && charts.isConnected) drawHistory(charts, ""); }, 2000);
  }

  // -- views and polling ----------------------------------------------------------------------------
  function renderHeader() {
    const ready = $("#ready");
    if (!server) { ready.hidden = true; return; }
    ready.hidden = false;
    ready.className = "state " + (server.ready ? "ready" : "failed");
    ready.textContent = server.ready ? "server ready" : "server not ready";
    ready.title = server.ready ? "" : server.not_ready || "";
    const n = $("#note");
    n.hidden = !note;
    n.textContent = note;
  }

  function render() {
    renderHeader();
    if (view === "models") renderList();
  }

  function route() {
    const hash = location.hash || "#/";
    const [path, query] = hash.slice(1).split("?");
    const params = new URLSearchParams(query || "");
    clearInterval(timer);
    const next = path.startsWith("/m/") ? "model" : path === "/server" ? "server" : "models";
    view = next;
    for (const v of ["models", "model", "server"]) $("#view-" + v).hidden = v !== next;
    $$("[data-nav]").forEach(a => a.classList.toggle("on", a.dataset.nav === (next === "server" ? "server" : "models")));
    if (boot.auth && !sessionStorage.getItem(KEY)) {  // nothing to show before there is a key
      $("#view-" + next).hidden = true;
      return;
    }
    if (next === "model") { $("#view-model").replaceChildren(el("p", { class: "muted", text: "Loading…" })); renderModel(decodeURIComponent(path.slice(3)), params.get("version")); }
    else if (next === "server") renderServer();
    else renderList();
    window.scrollTo(0, 0);
  }
  window.addEventListener("hashchange", route);

  document.body.classList.add("js");
  $("#app").hidden = false;
  keyButton();
  renderHeader();
  route();
  if (boot.auth && !sessionStorage.getItem(KEY)) showKeygate("");
  else if (boot.auth) loadModels().then(route);
  setInterval(() => { if (!document.hidden && (!boot.auth || sessionStorage.getItem(KEY))) loadModels(); }, 5000);
})();

// modelport console: buttons, live charts and "try it" on top of the server-rendered page. No build, no deps.
"use strict";
(function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  document.body.classList.add("js");
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "onclick") e.addEventListener("click", v); else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
    }
    for (const kid of kids) e.append(kid);
    return e;
  };
  const enc = encodeURIComponent;
  let models = boot.models;

  function toast(text) {
    const t = el("div", { class: "toast", role: "status", text });
    document.body.append(t);
    setTimeout(() => t.remove(), 3500);
  }

  // -- state and the repository buttons ---------------------------------------------------------
  function badge(node, state) {
    node.className = "state " + state.toLowerCase();
    node.textContent = state;
  }

  function renderStates() {
    for (const m of models) {
      const row = $(`tr[data-model="${CSS.escape(m.name)}"]`);
      const section = $(`section.model[data-model="${CSS.escape(m.name)}"]`);
      if (row) {
        badge($(".state", row), m.state);
        let reason = $(".reason", row);
        const text = m.state !== "READY" && m.reason ? m.reason : "";
        if (!reason && text) { reason = el("div", { class: "reason" }); $(".state", row).after(reason); }
        if (reason) reason.textContent = text;
        const cell = $(".actions", row);
        cell.replaceChildren();
        const ready = m.state === "READY";
        const busy = m.state === "LOADING" || m.state === "UNLOADING";
        const load = el("button", { "data-action": ready ? "reload" : "load", onclick: () => act(m.name, "load") }, ready ? "Reload" : "Load");
        const unload = el("button", { "data-action": "unload", onclick: () => act(m.name, "unload") }, "Unload");
        if (busy) { load.disabled = true; unload.disabled = true; }
        if (!ready) unload.disabled = true;
        cell.append(load, unload);
      }
      if (section) badge($("h2 .state", section), m.state);
    }
  }

  async function refresh() {
    try {
      const r = await fetch("/ui/api/models", { cache: "no-store" });
      if (!r.ok) return;
      const doc = await r.json();
      models = doc.models;
      renderStates();
      $("#uptime").textContent = Math.round(doc.server.uptime_s) + " s";
      const ready = $("#ready");
      ready.className = "state " + (doc.server.ready ? "ready" : "unavailable");
      ready.textContent = doc.server.ready ? "server ready" : "server not ready";
    } catch (e) { /* the server may be restarting; the next poll tries again */ }
  }

  async function act(name, verb) {
    $$(`tr[data-model="${CSS.escape(name)}"] button`).forEach(b => { b.disabled = true; });
    const r = await fetch(`/v2/repository/models/${enc(name)}/${verb}`, { method: "POST" });
    let message = `${name}: ${verb}ed`;
    if (!r.ok) {
      let detail = r.statusText;
      try { detail = (await r.json()).error || detail; } catch (e) { /* not JSON */ }
      message = `${name}: ${verb} failed (${r.status}): ${detail}`;
    }
    toast(message);
    await refresh();
  }

  // -- live charts -------------------------------------------------------------------------------
  const HISTORY = 60, POLL_MS = 2000;
  const series = {};  // model -> {key: [values]}
  let last = null;

  function quantile(buckets, q) {
    const edges = Object.keys(buckets).map(k => [k === "+Inf" ? Infinity : parseFloat(k), buckets[k]]).sort((a, b) => a[0] - b[0]);
    const total = edges.length ? edges[edges.length - 1][1] : 0;
    if (!total) return null;
    const rank = q * total;
    let prevEdge = 0, prevCount = 0;
    for (const [edge, count] of edges) {
      if (count >= rank) {
        if (edge === Infinity) return prevEdge * 1000;
        const inBucket = count - prevCount;
        return 1000 * (prevEdge + (edge - prevEdge) * (inBucket ? (rank - prevCount) / inBucket : 0));
      }
      prevEdge = edge; prevCount = count;
    }
    return prevEdge * 1000;
  }

  const CHARTS = [
    ["rps", "requests/s", v => v.toFixed(1)],
    ["err", "errors %", v => v.toFixed(1) + "%"],
    ["lat", "latency p50 / p99 ms", v => v.toFixed(2)],
    ["batch", "batch size", v => v.toFixed(1)],
    ["queue", "in flight (queue depth)", v => v.toFixed(0)],
  ];

  function setupCharts() {
    for (const box of $$(".charts")) {
      box.replaceChildren();
      for (const [key, title] of CHARTS) {
        box.append(el("div", { class: "chart", "data-chart": key },
          el("div", { class: "t" }, el("span", { text: title }), el("span", { class: "v", text: "–" })),
          el("canvas", { width: "300", height: "70" })));
      }
    }
  }

  function draw(canvas, lines) {
    const ctx = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height;
    ctx.clearRect(0, 0, w, h);
    const all = lines.flatMap(l => l.values.filter(v => v !== null));
    const top = Math.max(1e-9, ...all) * 1.15;
    ctx.strokeStyle = "#d0d7de"; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(0, h - 0.5); ctx.lineTo(w, h - 0.5); ctx.stroke();
    for (const line of lines) {
      ctx.strokeStyle = line.color; ctx.lineWidth = 1.5; ctx.beginPath();
      let started = false;
      line.values.forEach((v, i) => {
        if (v === null) return;
        const x = (i / (HISTORY - 1)) * w, y = h - (v / top) * (h - 4) - 2;
        if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
      });
      ctx.stroke();
    }
  }

  function push(model, key, value) {
    const s = series[model] = series[model] || {};
    const arr = s[key] = s[key] || Array(HISTORY).fill(null);
    arr.push(value); arr.shift();
  }

  async function poll() {
    if (document.hidden) return;  // nobody is looking: ask the server for nothing
    let doc;
    try {
      const r = await fetch("/ui/api/stats", { cache: "no-store" });
      if (!r.ok) return;
      doc = await r.json();
    } catch (e) { return; }
    if (last) {
      const dt = Math.max(1e-3, doc.time - last.time);
      for (const m of models) {
        const now = doc.models[m.name], before = last.models[m.name];
        if (!now) continue;
        const prev = before || { requests: 0, failures: 0, buckets: {}, batch_sum: 0, batch_count: 0 };
        const dReq = now.requests - prev.requests, dFail = now.failures - prev.failures;
        const delta = {};
        for (const k of Object.keys(now.buckets)) delta[k] = now.buckets[k] - (prev.buckets[k] || 0);
        const dBatch = now.batch_count - prev.batch_count;
        push(m.name, "rps", dReq / dt);
        push(m.name, "err", dReq > 0 ? 100 * dFail / dReq : 0);
        push(m.name, "p50", dReq > 0 ? quantile(delta, 0.5) : null);
        push(m.name, "p99", dReq > 0 ? quantile(delta, 0.99) : null);
        push(m.name, "batch", dBatch > 0 ? (now.batch_sum - prev.batch_sum) / dBatch : null);
        push(m.name, "queue", now.in_flight);
      }
    }
    last = doc;
    for (const box of $$(".charts")) {
      const s = series[box.dataset.model];
      if (!s) continue;
      for (const [key, , fmt] of CHARTS) {
        const chart = $(`[data-chart="${key}"]`, box);
        const lines = key === "lat" ? [{ values: s.p50, color: "#2563eb" }, { values: s.p99, color: "#cf222e" }]
          : [{ values: s[key], color: key === "err" ? "#cf222e" : "#2563eb" }];
        if (!lines[0].values) continue;
        draw($("canvas", chart), lines);
        const latest = lines.map(l => l.values[HISTORY - 1]).filter(v => v !== null && v !== undefined);
        $(".v", chart).textContent = latest.length ? latest.map(fmt).join(" / ") : "–";
      }
    }
  }

  // -- try it --------------------------------------------------------------------------------------
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

  function setupTry(box) {
    const m = models.find(x => x.name === box.dataset.model);
    if (!m) return;
    box.replaceChildren(el("h3", { text: "Try it" }));
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
    const out = el("pre", { class: "response", hidden: "" });
    const meta = el("div", { class: "meta" });
    const curl = el("pre", { class: "curl", hidden: "" });
    const request = () => {
      const v1 = mode.value === "v1json";
      const path = v1 ? `/v1/models/${enc(m.name)}:predict` : `/v2/models/${enc(m.name)}/infer`;
      const body = mode.value === "form" ? JSON.stringify(v2body()) : JSON.stringify(JSON.parse(editor.value));
      return { path, body };
    };
    const send = el("button", { class: "primary", "data-action": "send", onclick: async () => {
      let req;
      try { req = request(); } catch (e) { meta.textContent = "Not valid JSON: " + e.message; return; }
      send.disabled = true;
      const t0 = performance.now();
      try {
        const r = await fetch(req.path, { method: "POST", headers: { "Content-Type": "application/json" }, body: req.body });
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
      const text = `curl -X POST '${location.origin}${req.path}' -H 'Content-Type: application/json' -d '${req.body.replace(/'/g, "'\\''")}'`;
      curl.textContent = text; curl.hidden = false;
      try { await navigator.clipboard.writeText(text); toast("curl command copied"); } catch (e) { toast("curl command shown below"); }
    } }, "Copy as curl");
    box.append(el("div", { class: "field" }, mode), form, editor, el("div", {}, send, copy), meta, out, curl);
    showMode();
  }

  renderStates();
  setupCharts();
  $$(".try").forEach(setupTry);
  poll();
  setInterval(poll, POLL_MS);
  setInterval(() => { if (!document.hidden) refresh(); }, 5000);
})();

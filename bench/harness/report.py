"""Aggregate raw runs (medians over rounds) and render the markdown report."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

MP = "modelport"


def _median(values):
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(values) if values else None


def _fmt(value, digits=1):
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def _cell_text(text: str, limit: int = 100) -> str:
    """Make free text safe inside one markdown table cell."""
    return " ".join(text.split()).replace("|", "/")[:limit]


def _ratio(a, b):
    return a / b if a and b else None


def case_key(run: dict) -> tuple:
    return (run["proto"], run["rows"], run["conns"])


ORDER = {"v1": 0, "v2": 1, "grpc": 2, "grpc-stream": 3}


def case_label(key: tuple) -> str:
    proto, rows, conns = key
    return f"{proto} [{rows},4] c={conns}" + (" (streams)" if proto == "grpc-stream" else "")


def aggregate(runs: list[dict], starts: list[dict]) -> dict:
    """{(server, case): medians over rounds}, plus per-server cold start medians."""
    grouped = defaultdict(list)
    for run in runs:
        grouped[(run["server"], case_key(run))].append(run)
    cold = defaultdict(list)
    for start in starts:
        if start.get("cold_start_s") is not None:
            cold[start["server"]].append(start["cold_start_s"])
    cells = {}
    for (server, key), items in grouped.items():
        ok = [r for r in items if "error" not in r]
        cells[(server, key)] = {
            "server": server, "peer": items[0]["peer"], "case": key, "rounds": len(ok),
            "rps": _median([r["rps"] for r in ok]),
            "p50_ms": _median([r["p50_ms"] for r in ok]),
            "p99_ms": _median([r["p99_ms"] for r in ok]),
            # The spread too: at 64 connections one server's p99 moves several-fold between rounds here.
            "p99_range": (min(r["p99_ms"] for r in ok), max(r["p99_ms"] for r in ok)) if len(ok) > 1 else None,
            "errors": sum(r.get("errors", 0) for r in ok),
            "cpu_us_per_req": _median([r["cpu_us_per_req"] for r in ok]),
            "rss_mib": _median([r["rss_mib"] for r in ok]),
            "failed": [r["error"] for r in items if "error" in r],
        }
    return {"cells": cells, "cold_start_s": {s: _median(v) for s, v in cold.items()}}


def infer_table(agg: dict, server_order: list[str]) -> str:
    cells, cold = agg["cells"], agg["cold_start_s"]
    cases = sorted({key for (_, key) in cells}, key=lambda k: (ORDER[k[0]], k[1], k[2]))
    lines = [
        ("| case | server | req/s | p50 ms | p99 ms (rounds' range) | errors | CPU µs/req | RSS MiB | cold start s "
         "| modelport ÷ this, req/s | modelport ÷ this, CPU/req |"),
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for key in cases:
        mp = cells.get((MP, key))
        for server in server_order:
            cell = cells.get((server, key))
            if cell is None:
                continue
            if cell["rps"] is None:
                lines.append(f"| {case_label(key)} | {server} | failed: {_cell_text('; '.join(cell['failed']))} "
                             "| | | | | | | | |")
                continue
            rps_ratio = _ratio(mp["rps"], cell["rps"]) if mp and mp["rps"] else None
            cpu_ratio = _ratio(mp["cpu_us_per_req"], cell["cpu_us_per_req"]) if mp and mp["rps"] else None
            lines.append(
                f"| {case_label(key)} | {server} | {_fmt(cell['rps'], 0)} | {_fmt(cell['p50_ms'], 2)} "
                f"| {_p99(cell)} | {cell['errors']} | {_fmt(cell['cpu_us_per_req'], 0)} "
                f"| {_fmt(cell['rss_mib'], 0)} | {_fmt(cold.get(server), 2)} "
                f"| {_fmt(rps_ratio, 2)} | {_fmt(cpu_ratio, 2)} |"
            )
    return "\n".join(lines)


def _p99(cell: dict) -> str:
    """The median p99, with the rounds' lowest and highest when there are several."""
    spread = cell.get("p99_range")
    return _fmt(cell["p99_ms"], 2) + (f" ({spread[0]:,.1f}–{spread[1]:,.1f})" if spread else "")


def _geomean(values):
    values = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def summary_table(agg: dict, server_order: list[str], subject: str = MP) -> str:
    """Geometric means over the cases both ran: ``subject`` (a modelport config) against each config
    and each peer's best."""
    cells = agg["cells"]
    mp_cases = {key: c for (s, key), c in cells.items() if s == subject and c["rps"]}
    if not mp_cases:
        return f"_{subject} did not run (or failed everywhere): no ratios._"
    rows = []
    targets = [(s, [s]) for s in server_order if s != subject]
    peers = defaultdict(list)
    for s in server_order:
        peer = next((c["peer"] for (srv, _), c in cells.items() if srv == s), None)
        if peer and peer != MP:
            peers[peer].append(s)
    targets += [(f"best of {peer}", configs) for peer, configs in peers.items() if len(configs) > 1]
    for label, configs in targets:
        rps_r, cpu_r, p99_r = [], [], []
        for key, mp in mp_cases.items():
            candidates = [cells[(s, key)] for s in configs if (s, key) in cells and cells[(s, key)]["rps"]]
            if not candidates:
                continue
            best = max(candidates, key=lambda c: c["rps"])
            rps_r.append(_ratio(mp["rps"], best["rps"]))
            cpu_r.append(_ratio(mp["cpu_us_per_req"], best["cpu_us_per_req"]))
            p99_r.append(_ratio(mp["p99_ms"], best["p99_ms"]))
        if rps_r:
            rows.append(f"| {label} | {len(rps_r)} | {_fmt(_geomean(rps_r), 2)} | {_fmt(_geomean(cpu_r), 2)} "
                        f"| {_fmt(_geomean(p99_r), 2)} |")
    head = [f"| {subject} vs | cases | req/s ratio (>1 faster) | CPU/req ratio (<1 cheaper) | p99 ratio (<1 better) |",
            "|---|--:|--:|--:|--:|"]
    return "\n".join(head + rows)


def health_table(runs: list[dict], server_order: list[str]) -> str:
    grouped = defaultdict(list)
    for run in runs:
        grouped[run["server"]].append(run)
    lines = [
        ("| server | infer req/s | infer p50 ms | infer p99 ms | infer errors | CPU ms/req "
         "| /v2/health/live p50 ms | p99 ms | max ms | probes | probe failures |"),
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for server in server_order:
        items = [r for r in grouped.get(server, []) if "error" not in r]
        if not items:
            if grouped.get(server):
                lines.append(f"| {server} | failed: {_cell_text(grouped[server][0]['error'])} | | | | | | | | | |")
            continue
        def m(key, items=items):
            return _median([r[key] for r in items])

        cpu = m("cpu_us_per_req")
        lines.append(
            f"| {server} | {_fmt(m('rps'), 1)} | {_fmt(m('p50_ms'), 1)} | {_fmt(m('p99_ms'), 1)} "
            f"| {sum(r['errors'] for r in items)} | {_fmt(cpu / 1000 if cpu else None, 1)} "
            f"| {_fmt(m('health_p50_ms'), 2)} | {_fmt(m('health_p99_ms'), 2)} | {_fmt(m('health_max_ms'), 1)} "
            f"| {sum(r['health_probes'] for r in items)} | {sum(r['health_failures'] for r in items)} |"
        )
    return "\n".join(lines)


def stream_table(agg: dict, server_order: list[str]) -> str:
    """Each server's ModelStreamInfer req/s (inference requests, not streams) against unary gRPC req/s
    for the same rows and connections (= concurrent streams), from the same run: each peer's best
    config, each peer as shipped, and the stream server's own unary ModelInfer."""
    cells = agg["cells"]
    peers: dict[str, list[str]] = defaultdict(list)
    for (srv, _), c in cells.items():
        if c["peer"] != MP and srv not in peers[c["peer"]]:
            peers[c["peer"]].append(srv)
    streams = sorted({key for (_, key) in cells if key[0] == "grpc-stream"}, key=lambda k: (k[1], k[2]))
    lines = ["| case | stream server | stream req/s | against unary gRPC of | its req/s | stream ÷ unary |",
             "|---|---|--:|---|--:|--:|"]
    for key in streams:
        unary_key = ("grpc", key[1], key[2])
        for s in server_order:
            stream = cells.get((s, key))
            if not stream or not stream["rps"]:
                continue
            targets = [(f"{s} (itself)", cells.get((s, unary_key)))]
            for peer in sorted(peers):
                ran = [c for srv in server_order if srv in peers[peer]
                       for c in [cells.get((srv, unary_key))] if c and c["rps"]]
                if ran:
                    best = max(ran, key=lambda c: c["rps"])
                    targets.append((f"{peer} best ({best['server']})", best))
                    if peer in server_order and cells.get((peer, unary_key)) not in (None, best):
                        targets.append((f"{peer} as shipped", cells[(peer, unary_key)]))
            for label, unary in targets:
                if unary and unary["rps"]:
                    lines.append(f"| [{key[1]},4] c={key[2]} | {s} | {_fmt(stream['rps'], 0)} | {label} "
                                 f"| {_fmt(unary['rps'], 0)} | {_fmt(_ratio(stream['rps'], unary['rps']), 2)} |")
    return "\n".join(lines)


def write_summary(text: str, out: str, name: str) -> None:
    """Print a bench script's markdown summary and, unless ``out`` is empty, write it to
    ``out/<UTC stamp>-<name>.md`` (bench/results by default)."""
    print(text)
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        path = Path(out) / f"{datetime.now(timezone.utc):%Y-%m-%d-%H%M%S}-{name}.md"
        path.write_text(text)
        print(f"wrote {path}")

"""Numbers from one run: per-step statistics, the server's own split from /metrics, and the outputs
(a perf_analyzer-style summary, a table, JSON, CSV and a PNG plot)."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class StepResult:
    mode: str  # "concurrency" or "rate"
    level: float  # the concurrency, or the requests/s asked for
    requests: int  # answered with success while measuring
    errors: dict[str, int]
    seconds: float
    throughput: float  # successful requests per second
    latency_ms: dict[str, float]  # mean, min, p50, p90, p95, p99, max
    server: dict[str, float] = field(default_factory=dict)  # requests, request_ms, queue_ms, compute_ms
    client_cpu_us: float = 0.0  # the bench's own CPU time per request (its overhead), single process only

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def summarize(mode: str, level: float, latencies_ns: np.ndarray, errors: dict, seconds: float) -> StepResult:
    lat = np.asarray(latencies_ns, dtype=np.float64) / 1e6
    if lat.size:
        p = np.percentile(lat, [50, 90, 95, 99])
        latency = {"mean": float(lat.mean()), "min": float(lat.min()), "p50": float(p[0]), "p90": float(p[1]),
                   "p95": float(p[2]), "p99": float(p[3]), "max": float(lat.max())}
    else:
        latency = {k: float("nan") for k in ("mean", "min", "p50", "p90", "p95", "p99", "max")}
    return StepResult(mode, level, int(lat.size), dict(errors), seconds, lat.size / seconds if seconds else 0.0, latency)


# -- the server's side, from its Prometheus metrics --------------------------------------------------
def scrape(text: str, model: str) -> dict[str, float]:
    """Sums and counts of the server's request, batch-queue and stage histograms for one model."""
    from prometheus_client.parser import text_string_to_metric_families

    wanted = {
        "modelport_request_duration_seconds": "request",
        "modelport_batch_queue_seconds": "queue",
        "modelport_stage_duration_seconds": "stage",
    }
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        key = wanted.get(family.name)
        if key is None:
            continue
        for sample in family.samples:
            if sample.labels.get("model") != model or not sample.name.endswith(("_sum", "_count")):
                continue
            name = key if key != "stage" else sample.labels.get("stage", "stage")
            name += "_sum" if sample.name.endswith("_sum") else "_count"
            out[name] = out.get(name, 0.0) + sample.value
    return out


def server_split(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Mean server-side times over a step: whole request, waiting for a batch, and the model's hooks."""

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    def mean_ms(stage: str) -> float:
        count = delta(stage + "_count")
        return 1e3 * delta(stage + "_sum") / count if count else 0.0

    requests = delta("request_count")
    if not requests:
        return {}
    compute = sum(mean_ms(s) * delta(s + "_count") for s in ("preprocess", "predict", "postprocess")) / requests
    return {"requests": requests, "request_ms": mean_ms("request"), "queue_ms": mean_ms("queue"), "compute_ms": compute}


# -- outputs -------------------------------------------------------------------------------------
def _us(ms: float) -> str:
    return "n/a" if ms != ms else f"{ms * 1000:.0f} usec"


def perf_text(step: StepResult) -> str:
    """The step in perf_analyzer's words, so the numbers read the same."""
    title = f"Request concurrency: {step.level:g}" if step.mode == "concurrency" else f"Request Rate: {step.level:g} inference requests per seconds"
    lat = step.latency_ms
    lines = [
        title, "  Client: ",
        f"    Request count: {step.requests}",
        f"    Throughput: {step.throughput:.2f} infer/sec",
        f"    Avg latency: {_us(lat['mean'])}",
        f"    p50 latency: {_us(lat['p50'])}", f"    p90 latency: {_us(lat['p90'])}",
        f"    p95 latency: {_us(lat['p95'])}", f"    p99 latency: {_us(lat['p99'])}",
    ]
    if step.client_cpu_us:
        lines.append(f"    Client CPU: {step.client_cpu_us:.0f} usec per request")
    if step.errors:
        lines.append("    Errors: " + ", ".join(f"{code}: {n}" for code, n in sorted(step.errors.items())))
    if step.server:
        s = step.server
        lines += ["  Server: ", f"    Inference count: {s['requests']:.0f}",
                  f"    Avg request latency: {_us(s['request_ms'])} (queue {_us(s['queue_ms'])} + compute {_us(s['compute_ms'])}"
                  f" + other {_us(max(0.0, s['request_ms'] - s['queue_ms'] - s['compute_ms']))})"]
    return "\n".join(lines)


class PlainConsole:
    """What the bench prints through, without rich: plain lines (rich markup is not used here)."""

    def __init__(self, stream: Any):
        self.stream = stream

    def print(self, *objects: Any) -> None:
        print(*objects, file=self.stream, flush=True)


def console_for(stream: Any) -> Any:
    """rich's Console when rich is installed (the ``bench`` extra), else :class:`PlainConsole`."""
    try:
        from rich.console import Console
    except ImportError:
        return PlainConsole(stream)
    return Console(file=stream) if stream.isatty() else Console(file=stream, width=160)


_COLUMNS = ("req/s", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "errors", "server ms", "queue ms", "compute ms")


def _rows(steps: list[StepResult]) -> list[list[str]]:
    rows = []
    for s in steps:
        errors = ", ".join(f"{c}:{n}" for c, n in sorted(s.errors.items())) or "0"
        srv = s.server
        rows.append([f"{s.level:g}", f"{s.throughput:.1f}", *(f"{s.latency_ms[k]:.2f}" for k in ("p50", "p90", "p95", "p99")),
                     errors, *((f"{srv[k]:.2f}" for k in ("request_ms", "queue_ms", "compute_ms")) if srv else ("-",) * 3)])
    return rows


def plain_table(steps: list[StepResult], title: str = "modelport bench") -> str:
    """The table as aligned plain text (no rich)."""
    mode = steps[0].mode if steps else "concurrency"
    head = ["concurrency" if mode == "concurrency" else "rate (req/s)", *_COLUMNS]
    rows = [head, *_rows(steps)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [title] + ["  ".join(cell.rjust(w) for cell, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def table(steps: list[StepResult], title: str = "modelport bench") -> Any:
    """A rich Table (with the ``bench`` extra), else the plain-text table."""
    try:
        from rich.table import Table
    except ImportError:
        return plain_table(steps, title)

    t = Table(title=title)
    mode = steps[0].mode if steps else "concurrency"
    t.add_column("concurrency" if mode == "concurrency" else "rate (req/s)", justify="right")
    for name in _COLUMNS:
        t.add_column(name, justify="right")
    for row in _rows(steps):
        t.add_row(*row)
    return t


def markdown(steps: list[StepResult]) -> str:
    head = "| concurrency | req/s | p50 ms | p90 ms | p95 ms | p99 ms | errors | server ms | queue ms | compute ms |"
    rows = [head, "|" + "---:|" * 10]
    for s in steps:
        srv = s.server
        rows.append("| " + " | ".join([f"{s.level:g}", f"{s.throughput:.1f}", *(f"{s.latency_ms[k]:.2f}" for k in ("p50", "p90", "p95", "p99")),
                                      str(s.error_count), *((f"{srv[k]:.2f}" for k in ("request_ms", "queue_ms", "compute_ms")) if srv else ("-",) * 3)]) + " |")
    return "\n".join(rows)


def to_json(steps: list[StepResult], config: dict) -> str:
    return json.dumps({"config": config, "steps": [asdict(s) for s in steps]}, indent=2)


CSV_FIELDS = ["mode", "level", "requests", "errors", "seconds", "throughput", "mean_ms", "min_ms", "p50_ms", "p90_ms",
              "p95_ms", "p99_ms", "max_ms", "server_requests", "server_request_ms", "server_queue_ms", "server_compute_ms"]


def write_csv(steps: list[StepResult], path: str) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for s in steps:
            lat, srv = s.latency_ms, s.server
            w.writerow([s.mode, s.level, s.requests, s.error_count, round(s.seconds, 3), round(s.throughput, 2),
                        *(round(lat[k], 3) for k in ("mean", "min", "p50", "p90", "p95", "p99", "max")),
                        *(round(srv.get(k, 0.0), 3) for k in ("requests", "request_ms", "queue_ms", "compute_ms"))])


# One colour per line of the plot (matplotlib's tab10 palette).
PLOT_COLORS = {"throughput": "tab:blue", "p50": "tab:orange", "p95": "tab:green", "p99": "tab:red"}


def plot(steps: list[StepResult], path: str, title: str = "modelport bench") -> None:
    """Throughput and latency percentiles against concurrency (or rate). Needs matplotlib."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("modelport bench --plot needs matplotlib: pip install 'modelport[bench]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = figure(steps, title)
    fig.savefig(path)
    plt.close(fig)


def figure(steps: list[StepResult], title: str = "modelport bench") -> Any:
    """The plot's matplotlib Figure (the caller saves and closes it)."""
    import matplotlib.pyplot as plt

    x = [s.level for s in steps]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(x, [s.throughput for s in steps], "o-", color=PLOT_COLORS["throughput"], label="throughput")
    ax.set_xlabel("concurrency" if steps and steps[0].mode == "concurrency" else "request rate (req/s)")
    ax.set_ylabel("requests / s", color=PLOT_COLORS["throughput"])
    if len(x) > 1 and min(x) > 0 and max(x) / min(x) >= 8:
        ax.set_xscale("log", base=2)
    # Ticks at the measured levels only (1, 2, 4, not 1.0, 1.5, 2.0), labelled as given.
    ax.set_xticks(x, [f"{v:g}" for v in x])
    ax.minorticks_off()
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()  # a twin axis restarts matplotlib's colour cycle: every line names its colour
    for key, style in (("p50", "s--"), ("p95", "^--"), ("p99", "v--")):
        ax2.plot(x, [s.latency_ms[key] for s in steps], style, color=PLOT_COLORS[key], label=f"{key} latency")
    ax2.set_ylabel("latency (ms)")
    ax2.set_ylim(bottom=0)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper left", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig

"""`modelport bench` against a server with a known delay: its statistics must match what the delay implies."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from modelport.bench import BenchConfig, parse_levels, run_bench, start_server
from modelport.bench.report import scrape, server_split, summarize
from modelport.cli import main

from ..helpers import server_in_thread
from .sleeper_model import DELAY, Sleeper

REPO = Path(__file__).resolve().parents[2]
FLOOR_MS = DELAY * 1e3 * 0.9  # the model's sleep, less timer slack


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`modelport serve` in its own process: the bench's clock is not shared with the server's GIL."""
    folder = tmp_path_factory.mktemp("models") / "sleeper"
    folder.mkdir()
    (folder / "model-settings.json").write_text(json.dumps(
        {"name": "sleeper", "implementation": "tests.operator.sleeper_model.Sleeper"}))
    started = start_server(str(folder.parent), env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        yield started
    finally:
        started.stop()


def _config(server, **kw):
    kw.setdefault("duration", 2.0)
    kw.setdefault("warmup", 0.3)
    return BenchConfig(model="sleeper", url=server.url, grpc=server.grpc, **kw)


def test_parse_levels():
    assert parse_levels("1:64:x2") == [1, 2, 4, 8, 16, 32, 64]
    assert parse_levels("1:4:1") == [1, 2, 3, 4]
    assert parse_levels("8") == [8] and parse_levels("1,4,16") == [1, 4, 16]
    assert parse_levels("100:400:+100", float) == [100.0, 200.0, 300.0, 400.0]
    for bad in ("1:64", "0:4:x2", "4:1:x1", "1:8:0"):
        with pytest.raises(ValueError):
            parse_levels(bad)


def test_summary_percentiles_are_exact():
    step = summarize("concurrency", 1, np.arange(1, 101) * 1_000_000, {"503": 2}, 2.0)
    assert step.requests == 100 and step.throughput == 50.0 and step.errors == {"503": 2}
    assert step.latency_ms["p50"] == pytest.approx(50.5) and step.latency_ms["p99"] == pytest.approx(99.01)
    assert step.latency_ms["min"] == 1.0 and step.latency_ms["max"] == 100.0


@pytest.mark.parametrize("protocol", ["rest-v2", "grpc"])
def test_closed_loop_matches_the_known_delay(server, protocol):
    steps = run_bench(_config(server, protocol=protocol, concurrency=[1, 4]))
    for step in steps:
        # Bounds that hold however busy the machine is (how close the figures come to the delay is
        # bench/bench_selfcheck.py's job, not the suite's): no request is faster than the model's sleep
        # (less the event loop's timer slack: asyncio may wake a sleeper up to its clock resolution
        # early), and no closed loop of N clients beats N / delay.
        lat = step.latency_ms
        assert lat["min"] >= FLOOR_MS, lat
        assert lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
        assert step.errors == {}
        assert 0 < step.throughput <= 1.02 * step.level / DELAY, (step.level, step.throughput)
        # The server's own split: the time is the model's (compute), nothing waits in a batch queue.
        assert step.server["compute_ms"] >= FLOOR_MS
        assert step.server["queue_ms"] == 0.0
        assert step.server["requests"] >= step.requests


def test_open_loop_holds_the_rate(server):
    steps = run_bench(_config(server, rates=[50.0, 100.0], protocol="rest-v2-binary"))
    for step in steps:
        assert step.requests > 0 and step.errors == {}
        assert step.latency_ms["min"] >= FLOOR_MS  # timed from the schedule, never faster than the model


def test_request_count_and_errors_by_code(server, tmp_path):
    body = tmp_path / "bad.json"
    body.write_text(json.dumps({"inputs": [{"name": "wrong", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}))
    steps = run_bench(_config(server, input_file=str(body), requests=50, concurrency=[2]))
    assert steps[0].requests == 0 and sum(steps[0].errors.values()) >= 50 and set(steps[0].errors) == {"400"}


def test_cli_writes_table_json_csv_and_plot(server, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["bench", "sleeper", "--url", server.url, "--concurrency", "1:4:x2",
               "--duration", "1", "--warmup", "0.2", "--json", f"{out}.json", "--csv", f"{out}.csv",
               "--plot", f"{out}.png", "--markdown", "--protocol", "rest-v1", "--batch", "2"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "Request concurrency: 4" in text and "Throughput:" in text and "p99 latency:" in text
    assert "| concurrency | req/s |" in text
    doc = json.loads((tmp_path / "run.json").read_text())
    assert [s["level"] for s in doc["steps"]] == [1, 2, 4] and doc["config"]["protocol"] == "rest-v1"
    rows = list(csv.DictReader((tmp_path / "run.csv").read_text().splitlines()))
    assert len(rows) == 3 and float(rows[2]["throughput"]) > float(rows[0]["throughput"])
    assert (tmp_path / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_bad_levels_exit_2(capsys):
    assert main(["bench", "m", "--concurrency", "1:64"]) == 2
    assert "start:end:step" in capsys.readouterr().err


def test_server_split_from_metrics_text():
    text = """# TYPE modelport_request_duration_seconds histogram
modelport_request_duration_seconds_count{model="m",protocol="v2"} 10.0
modelport_request_duration_seconds_sum{model="m",protocol="v2"} 0.5
# TYPE modelport_stage_duration_seconds histogram
modelport_stage_duration_seconds_count{model="m",stage="predict"} 10.0
modelport_stage_duration_seconds_sum{model="m",stage="predict"} 0.3
# TYPE modelport_batch_queue_seconds histogram
modelport_batch_queue_seconds_count{model="m"} 10.0
modelport_batch_queue_seconds_sum{model="m"} 0.1
"""
    split = server_split({}, scrape(text, "m"))
    assert split == {"requests": 10.0, "request_ms": pytest.approx(50.0), "queue_ms": pytest.approx(10.0),
                     "compute_ms": pytest.approx(30.0)}


def test_accepted_connections_have_tcp_nodelay():
    """Found by the bench: without TCP_NODELAY a response written in two parts waited ~40 ms for a delayed ACK
    (asyncio's own loop sets it only on sockets whose proto says TCP)."""
    import socket

    import httpx

    with server_in_thread([Sleeper()]) as server, httpx.Client() as client:
        client.get(f"http://127.0.0.1:{server.http_port}/v2/health/live")
        socks = [c.transport.get_extra_info("socket") for c in server._http.server_state.connections]
        assert socks and all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in socks)


# -- without the bench extra, the first line, the plot ----------------------------------------------
HIDE_EXTRAS = '''
import importlib.abc, sys
class _Hidden(importlib.abc.MetaPathFinder):
    """The bench extra is not installed: rich and matplotlib cannot be imported."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("rich", "matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return None
sys.meta_path.insert(0, _Hidden())
'''


def _bench_cli(tmp_path, *args, hide=True):
    import subprocess
    import sys

    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(HIDE_EXTRAS if hide else "")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    return subprocess.run([sys.executable, "-m", "modelport.cli", "bench", *args], capture_output=True, text=True,
                          env=env, timeout=100)


def test_bench_without_rich_or_matplotlib_prints_plain_text(server, tmp_path):
    done = _bench_cli(tmp_path, "sleeper", "--url", server.url, "--concurrency", "1,2", "--duration", "1.2",
                      "--warmup", "0.2")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "rich" not in done.stdout
    lines = done.stdout.splitlines()
    # What is measured comes first, then each step's progress lines, its summary, and the plain table.
    assert lines[0].startswith("modelport bench: sleeper on http://127.0.0.1:") and "concurrency 1,2" in lines[0]
    assert lines[1] == "concurrency 1: warm-up 0.2 s, then measuring 1.2 s"
    assert any(line.startswith("concurrency 1: 1 s, ") and "req/s" in line for line in lines)
    first, second = lines.index("Request concurrency: 1"), lines.index("Request concurrency: 2")
    assert 1 < first < lines.index("concurrency 2: warm-up 0.2 s, then measuring 1.2 s") < second
    header = lines.index("sleeper over rest-v2")
    assert header > second and lines[header + 1].split() == ["concurrency", "req/s", "p50", "ms", "p90", "ms", "p95", "ms",
                                                             "p99", "ms", "errors", "server", "ms", "queue", "ms", "compute", "ms"]
    assert [line.split()[0] for line in lines[header + 2:header + 4]] == ["1", "2"]
    # --plot names the extra it needs; the results were printed before that.
    done = _bench_cli(tmp_path, "sleeper", "--url", server.url, "--requests", "5", "--warmup", "0", "--plot",
                      str(tmp_path / "p.png"))
    assert done.returncode == 1 and "pip install 'modelport[bench]'" in done.stderr and "Traceback" not in done.stderr
    assert "Request concurrency: 1" in done.stdout and not (tmp_path / "p.png").exists()


def test_bench_prints_what_it_measures_before_anything_else(tmp_path):
    """The first line comes before the load code runs: here the server is unreachable, and the line is
    still first, followed by the error."""
    done = _bench_cli(tmp_path, "m", "--url", "http://127.0.0.1:9", "--concurrency", "4", hide=False)
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == ("modelport bench: m on http://127.0.0.1:9 over rest-v2; concurrency 4; "
                                           "1 s warm-up + 5 s per step")
    assert done.stderr.startswith("modelport bench:") and "Traceback" not in done.stderr


@pytest.mark.parametrize("levels, log", [([1, 2, 4, 8, 16], True), ([1, 2, 3], False), ([3, 6, 9, 12], False)])
def test_plot_has_integer_ticks_at_the_levels_and_one_colour_per_line(levels, log):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    from modelport.bench.report import figure

    steps = [summarize("concurrency", c, np.array([1_000_000 * c, 2_000_000 * c]), {}, 1.0) for c in levels]
    fig = figure(steps, "t")
    try:
        ax, ax2 = fig.axes
        assert [t.get_text() for t in ax.get_xticklabels()] == [str(c) for c in levels]
        assert list(ax.get_xticks()) == levels
        assert (ax.get_xscale() == "log") is log
        lines = ax.get_lines() + ax2.get_lines()
        assert [line.get_label() for line in lines] == ["throughput", "p50 latency", "p95 latency", "p99 latency"]
        colours = [to_hex(line.get_color()) for line in lines]
        assert len(set(colours)) == 4, colours
    finally:
        plt.close(fig)

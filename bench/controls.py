#!/usr/bin/env python3
"""What the production controls cost: iris V2 REST at 8 connections, one server per case.

    python bench/controls.py                 # every case, 8 s runs after a 2 s warm-up (~2.5 min)
    python bench/controls.py --seconds 4     # shorter
    python bench/controls.py --cases bare,auth

Cases: ``bare`` (no controls), ``auth`` (API key checked), ``ratelimit`` (per-client and per-model
limits, never hit), ``all`` (auth + rate limits + CORS + input contracts + a response cache that never
hits: every body is new), and on a model that burns 5 ms of CPU per call: ``burn`` (no cache),
``burn-cache-0`` (cache on, every body new: 0% hits), ``burn-cache-90`` (9 requests in 10 repeat one
body: 90% hits). Needs wrk. Runs the working tree's modelport with this Python (no venv is made).
Prints a table (req/s, p50/p99 ms, errors, server CPU per request) and the ratios the targets are
about. ``--rounds N`` alternates the cases N times and reports medians: on a shared, noisy machine
req/s swings widely between runs, and the server's CPU time per request is the steadier measure of
what a control costs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
KEY = "bench-key-0123456789"
ROWS = "%d.0, 3.5, 1.4, 0.2"
LUA = """
counter = {offset}
local path = "/v2/models/{model}/infer"
local headers = {{["Content-Type"] = "application/json"{auth}}}
request = function()
  counter = counter + 1
  local v = counter
  if {repeat_every} > 0 and (counter % {repeat_every}) ~= 0 then v = 1 end
  if {repeat_every} < 0 then v = 1 end
  local body = string.format('{{"inputs":[{{"name":"input-0","datatype":"FP32","shape":[1,4],"data":[{rows}]}}]}}', v)
  return wrk.format("POST", path, headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {{"requests":%d,"duration_us":%d,"errors":%d,"status":%d,"p50_us":%d,"p99_us":%d}}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""

IRIS = {"name": "iris", "implementation": "modelport.examples.iris.IrisClassifier"}
BURN = {"name": "iris", "implementation": "modelport_controls.BurnIris", "parameters": {"extra": {"burn_ms": 5}}}
CONTRACT = {"max_rows": 64, "max_request_bytes": 65536,
            "input_schema": {"type": "object", "required": ["instances"]}}  # V1 only: V2 pays nothing for it
CACHE = {"response_cache": {"max_entries": 100000, "max_bytes": 256 * 1024 * 1024}}
AUTH = {"api_keys": [{"name": "bench", "key": KEY, "scopes": ["infer"]}]}
LIMITS = {"rate_limit": "100000000/second", "rate_limit_model": "100000000/second"}

# case: (model settings, server settings, send the key, body repeat: -1 always the same, 0 always new, 10: 9 in 10 repeat)
CASES = {
    "bare": (IRIS, {}, False, -1),
    "auth": (IRIS, AUTH, True, -1),
    "ratelimit": (IRIS, LIMITS, False, -1),
    "all": ({**IRIS, **CONTRACT, **CACHE}, {**AUTH, **LIMITS, "cors_origins": "https://app.example"}, True, 0),
    # The target configuration: auth + rate limits + the access log on with sampling at 0.
    "auth-limit-log0": (IRIS, {**AUTH, **LIMITS, "access_log": True, "access_log_sample": 0.0}, True, -1),
    "jsonlogs": (IRIS, {"log_format": "json"}, False, -1),
    "burn": (BURN, {}, False, -1),
    "burn-cache-0": ({**BURN, **CACHE}, {}, False, 0),
    "burn-cache-90": ({**BURN, **CACHE}, {}, False, 10),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, proc: subprocess.Popen, deadline: float = 60) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("server did not become ready")


def wrk(port: int, work: Path, model_case: tuple, seconds: int, conns: int) -> dict:
    _, _, send_key, repeat = model_case
    lua = work / f"case-{random.randrange(1 << 30)}.lua"
    lua.write_text(LUA.format(
        offset=random.randrange(1 << 20, 1 << 23), model="iris", rows=ROWS, repeat_every=repeat,
        auth=f', ["Authorization"] = "Bearer {KEY}"' if send_key else "",
    ))
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout=5s", "-s", str(lua), f"http://127.0.0.1:{port}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=False).stdout
    match = re.search(r"^WRKJSON (\{.*\})$", out, re.MULTILINE)
    if not match:
        raise SystemExit(f"wrk failed: {out[-400:]}")
    raw = json.loads(match.group(1))
    raw["rps"] = raw["requests"] / (raw["duration_us"] / 1e6)
    return raw


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_case(name: str, seconds: int, warmup: int, conns: int, work: Path) -> dict:
    model, server, _, _ = CASES[name]
    folder = work / name
    (folder / "iris").mkdir(parents=True, exist_ok=True)
    (folder / "iris" / "model-settings.json").write_text(json.dumps(model))
    (folder / "settings.json").write_text(json.dumps({**server, "enable_grpc": False, "log_level": "warning"}))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(BENCH / "peers")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelport.cli", "serve", str(folder), "--http-port", str(port), "--host", "127.0.0.1"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(work / f"{name}.log", "w"),
    )
    try:
        wait_ready(port, proc)
        wrk(port, work, CASES[name], warmup, conns)
        cpu = cpu_seconds(proc.pid)
        result = wrk(port, work, CASES[name], seconds, conns)
        result["cpu_us"] = (cpu_seconds(proc.pid) - cpu) / max(1, result["requests"]) * 1e6
        if name.startswith("burn-cache"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
            hits = sum(float(v) for v in re.findall(r'^modelport_cache_hits_total\{[^}]*\} (\S+)$', text, re.M))
            misses = sum(float(v) for v in re.findall(r'^modelport_cache_misses_total\{[^}]*\} (\S+)$', text, re.M))
            result["hit_rate"] = hits / max(1.0, hits + misses)
        return result
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk (Debian: apt-get install wrk)")
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    runs: dict[str, list[dict]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="modelport-controls-bench-") as tmp:
        for round_ in range(args.rounds):
            for name in names:
                r = run_case(name, args.seconds, args.warmup, args.connections, Path(tmp))
                runs[name].append(r)
                extra = f"  hit rate {r['hit_rate']:.0%}" if "hit_rate" in r else ""
                print(f"[{round_ + 1}] {name:14s} {r['rps']:7.0f} req/s  p50 {r['p50_us'] / 1000:6.2f} ms  p99 {r['p99_us'] / 1000:7.2f} ms"
                      f"  cpu {r['cpu_us']:6.0f} us/req  errors {r['errors']}  non-2xx {r['status']}{extra}", flush=True)
    med = {name: {k: statistics.median(r[k] for r in rs) for k in ("rps", "cpu_us")} for name, rs in runs.items() if rs}
    print(f"\nmedians over {args.rounds} round(s):")
    for name, m in med.items():
        print(f"  {name:14s} {m['rps']:7.0f} req/s  {m['cpu_us']:6.0f} us CPU/req")
    if "bare" in med:
        for name in ("auth", "ratelimit", "auth-limit-log0", "jsonlogs", "all"):
            if name in med:
                print(f"  {name} / bare: req/s {med[name]['rps'] / med['bare']['rps']:.3f}, "
                      f"CPU per request {med[name]['cpu_us'] / med['bare']['cpu_us']:.3f}")
    if "burn" in med:
        for name in ("burn-cache-0", "burn-cache-90"):
            if name in med:
                print(f"  {name} / burn: req/s {med[name]['rps'] / med['burn']['rps']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

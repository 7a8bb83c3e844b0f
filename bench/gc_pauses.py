"""Garbage-collector pauses inside a served process: how many collections of each generation a load
causes, how long each takes (the collecting thread's CPU time, so the figure holds on a busy machine:
a collection is pure CPU work and stalls the event loop for at least that long) and how many objects
the process tracks.

    python bench/gc_pauses.py --model-dir bench/models/iris -n 20000 -c 64
    python bench/gc_pauses.py --model-dir bench/models/iris-sklearn -n 20000 -c 64
    MODELPORT_GC_FREEZE=false python bench/gc_pauses.py ...     # the same without the frozen heap

Starts ``modelport serve`` (this checkout) under a small wrapper that registers a ``gc.callbacks``
hook before the server imports anything, drives N requests over C keep-alive connections
(bench/cpuprobe.py's client), stops the server with SIGTERM and prints, per generation, the number
of collections and their total and largest pause, plus the tracked objects at exit (frozen ones apart).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
WRAPPER = r'''
import atexit, gc, json, os, runpy, sys, time
out, marks, pauses = os.environ["GC_PAUSES_OUT"], {}, {0: [], 1: [], 2: []}
def _cb(phase, info):
    if state.get("done"):
        return
    if phase == "start":
        marks[info["generation"]] = time.thread_time()
    else:
        pauses[info["generation"]].append((time.thread_time() - marks.get(info["generation"], 0.0), info["collected"]))
state = {}
gc.callbacks.append(_cb)
def _dump():
    doc = {"pauses": pauses, **state}
    with open(out, "w") as f:
        json.dump(doc, f)
atexit.register(_dump)
def _reset(*_):  # the measured requests only: SIGUSR1 after the warm-up, and again after them
    if "tracked" in state:
        state["done"] = True
        return
    for v in pauses.values():
        v.clear()
    state.update(tracked=len(gc.get_objects()), frozen=gc.get_freeze_count())  # walked / skipped by a full pass
import signal
signal.signal(signal.SIGUSR1, _reset)
sys.argv = ["modelport", *sys.argv[4:]]
runpy.run_module("modelport.cli", run_name="__main__")
'''


def main() -> None:
    sys.path.insert(0, str(BENCH))
    import cpuprobe

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", default=str(BENCH / "models" / "iris"))
    ap.add_argument("--proto", default="v2")
    ap.add_argument("-n", type=int, default=20000)
    ap.add_argument("-c", "--conns", type=int, default=64)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gc-pauses-"))
    wrapper, out = tmp / "wrap.py", tmp / "pauses.json"
    wrapper.write_text(WRAPPER)
    os.environ["GC_PAUSES_OUT"] = str(out)
    proc, http, _, work = cpuprobe.start("modelport", args.model_dir, sys.executable, [sys.executable, str(wrapper)])
    try:
        raw = cpuprobe.request_bytes(args.proto, "iris", [[5.1, 3.5, 1.4, 0.2]], http)
        asyncio.run(cpuprobe.drive(http, raw, 2000, args.conns))  # warm-up
        os.kill(proc.pid, 10)  # SIGUSR1: count the measured requests only
        statuses = asyncio.run(cpuprobe.drive(http, raw, args.n, args.conns))
        os.kill(proc.pid, 10)  # the end of the measured requests (shutdown's collections are not theirs)
        time.sleep(0.5)
    finally:
        cpuprobe.stop(proc)
        shutil.rmtree(work, ignore_errors=True)
    doc = json.loads(out.read_text())
    report = {"model_dir": args.model_dir, "n": args.n, "conns": args.conns, "statuses": statuses,
              "tracked_objects": doc.get("tracked"), "frozen_objects": doc.get("frozen")}
    for gen, items in doc["pauses"].items():
        ms = sorted(p * 1000 for p, _ in items)
        report[f"gen{gen}"] = {"collections": len(ms), "cpu_ms_total": round(sum(ms), 1),
                               "cpu_ms_max": round(ms[-1], 2) if ms else 0,
                               "cpu_ms_median": round(ms[len(ms) // 2], 3) if ms else 0,
                               "per_10k_requests": round(len(ms) * 10000 / args.n, 2)}
    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()

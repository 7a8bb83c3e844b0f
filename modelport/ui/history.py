"""Chart history for the console, kept by the server so that a chart shows the last minutes on page load.

A timer samples the cumulative counters of the metrics registry every ``interval`` seconds, but only
while the console has been asked for something in the last ``idle_after`` seconds: with nobody watching it
stops, and the request path never pays for it. Each sample turns the counters' change since the previous
one into rates; the rates go into a fixed ring per model (and one for the whole server), ``keep`` samples
long, in compact float arrays (300 models x 180 samples x 6 series is about 1.3 MB).
"""

from __future__ import annotations

import array
import asyncio
import math
import time
from typing import Any, Callable

FIELDS = ("rps", "errors_pct", "p50_ms", "p99_ms", "batch", "in_flight")
SERVER = ""  # the ring of the server as a whole (every model's counters summed)
_NAN = float("nan")


def quantile_ms(buckets: dict[str, float], q: float) -> float:
    """The q-quantile (ms) of a cumulative Prometheus histogram, interpolated in its bucket."""
    edges = sorted((math.inf if k == "+Inf" else float(k), v) for k, v in buckets.items())
    total = edges[-1][1] if edges else 0.0
    if total <= 0:
        return _NAN
    rank, prev_edge, prev_count = q * total, 0.0, 0.0
    for edge, count in edges:
        if count >= rank:
            if edge == math.inf:
                return prev_edge * 1000
            inside = count - prev_count
            return 1000 * (prev_edge + (edge - prev_edge) * ((rank - prev_count) / inside if inside else 0.0))
        prev_edge, prev_count = edge, count
    return prev_edge * 1000


def rates(now: dict, before: dict | None, dt: float) -> tuple[float, ...]:
    """One sample of FIELDS from two cumulative snapshots of one model, ``dt`` seconds apart."""
    if before is None:
        return (_NAN, _NAN, _NAN, _NAN, _NAN, float(now["in_flight"]))
    d_req = now["requests"] - before["requests"]
    d_fail = now["failures"] - before["failures"]
    delta = {k: v - before["buckets"].get(k, 0.0) for k, v in now["buckets"].items()}
    d_batch = now["batch_count"] - before["batch_count"]
    return (
        max(0.0, d_req / dt),
        100.0 * d_fail / d_req if d_req > 0 else 0.0,
        quantile_ms(delta, 0.5) if d_req > 0 else _NAN,
        quantile_ms(delta, 0.99) if d_req > 0 else _NAN,
        (now["batch_sum"] - before["batch_sum"]) / d_batch if d_batch > 0 else _NAN,
        float(now["in_flight"]),
    )


class History:
    def __init__(self, counters: Callable[[], dict[str, dict]], interval: float = 2.0, keep: int = 180,
                 idle_after: float = 900.0):
        self.counters = counters  # model -> cumulative counters (Console.counters)
        self.interval, self.keep, self.idle_after = interval, keep, idle_after
        self.times = array.array("d", [_NAN] * keep)
        self.rings: dict[str, array.array] = {}
        self.taken = 0  # samples so far; the next goes to slot taken % keep
        self.last: dict[str, dict] | None = None
        self.last_time = 0.0
        self.watched = -math.inf  # monotonic time of the console's last request
        self.task: asyncio.Task | None = None
        self.closed = False

    def touch(self) -> None:
        """The console was asked for something: keep sampling (start the timer if it is not running)."""
        self.watched = time.monotonic()
        if not self.closed and (self.task is None or self.task.done()):
            try:
                self.task = asyncio.get_running_loop().create_task(self._run())
            except RuntimeError:  # no loop (a direct call in a test): nothing to schedule
                self.task = None

    async def _run(self) -> None:
        while time.monotonic() - self.watched < self.idle_after:
            self.sample()
            await asyncio.sleep(self.interval)
        self.last = None  # a later restart must not turn the idle gap into one long interval

    def stop(self) -> None:
        self.closed = True
        if self.task is not None:
            self.task.cancel()

    def sample(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        snapshot = self.counters()
        snapshot[SERVER] = _summed(snapshot.values())
        dt = now - self.last_time
        before = self.last if self.last is not None and 0 < dt < 5 * self.interval else None
        slot = self.taken % self.keep
        self.times[slot] = now
        width = len(FIELDS)
        for name in list(self.rings):  # models that are gone drop their ring
            if name not in snapshot:
                del self.rings[name]
        for name, counters in snapshot.items():
            ring = self.rings.get(name)
            if ring is None:
                ring = self.rings[name] = array.array("f", [_NAN] * (self.keep * width))
            ring[slot * width:(slot + 1) * width] = array.array("f", rates(counters, before.get(name) if before is not None else None, dt))
        self.taken += 1
        self.last, self.last_time = snapshot, now

    def series(self, name: str = SERVER) -> dict[str, Any]:
        """The ring of ``name``, oldest first: {"interval", "t": [...], "rps": [...], ...} (null: no data)."""
        count = min(self.taken, self.keep)
        start = self.taken - count
        slots = [(start + i) % self.keep for i in range(count)]
        out: dict[str, Any] = {"interval": self.interval, "t": [round(self.times[s], 3) for s in slots]}
        ring = self.rings.get(name)
        width = len(FIELDS)
        for j, field in enumerate(FIELDS):
            out[field] = [_num(ring[s * width + j]) for s in slots] if ring is not None else [None] * count
        return out

    def latest(self, name: str) -> dict[str, Any]:
        """The newest sample of ``name`` ({} before the first one)."""
        ring = self.rings.get(name)
        if ring is None or not self.taken:
            return {}
        slot, width = (self.taken - 1) % self.keep, len(FIELDS)
        return {f: _num(ring[slot * width + j]) for j, f in enumerate(FIELDS)}


def _summed(models: Any) -> dict:
    total = {"requests": 0.0, "failures": 0.0, "buckets": {}, "batch_sum": 0.0, "batch_count": 0.0, "in_flight": 0}
    for m in models:
        for k in ("requests", "failures", "batch_sum", "batch_count", "in_flight"):
            total[k] += m[k]
        for le, v in m["buckets"].items():
            total["buckets"][le] = total["buckets"].get(le, 0.0) + v
    return total


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)


__all__ = ["FIELDS", "History", "SERVER", "quantile_ms", "rates"]

"""When a sync hook chain may run on the event loop instead of a hook thread.

Handing a sync ``predict`` to a thread and back costs two wake-ups, a GIL hand-over and about 40 µs
of CPU: on a [1,4] scikit-learn model that is a third of the server's work per request. KServe runs
every sync hook on the loop and stalls the whole server behind a slow one. This policy earns the
cheap path instead: a chain runs in a thread until it has finished within ``budget`` many times in a
row; then requests no larger than the largest one seen finishing in time run on the loop. Two calls
over the budget on the loop close together, or one far over it, send the chain back to threads, and it
must then prove itself for longer (four times as many calls each time), so a model whose cost swings
does not flip back and forth.

Wall time alone misjudges a cheap chain under load: in a thread it also counts the waits for the GIL
while the loop serves other requests (up to the 5 ms switch interval each time the hook releases it,
as numpy does), and anywhere it counts the OS running other processes. Measured at 8 connections on a
busy machine, about one 0.2 ms scikit-learn predict in ten took over 1 ms in a thread that way, so 32
fast calls in a row never came and the model stayed in threads for good; on the loop one in forty did,
and the strikes sent it back. So a call over the budget also reports its own CPU time (the thread's):
within the budget, it *waited* (for the GIL, the CPU, or I/O). In a thread a wait says nothing either
way and is skipped; on the loop it is a quarter strike (a hook that blocks on I/O every call still
leaves after a few calls) unless it is far over the budget, which leaves at once as before.
"""

from __future__ import annotations

import math
from typing import Any

from ..types import InferRequest

LEARN_CALLS = 32
MAX_LEARN_CALLS = 1 << 14
STRIKE_DECAY = 1 / 16  # a strike is forgotten after 16 calls within the budget
WAIT_STRIKE = 1 / 4  # a call on the loop over the budget in wall time only


def request_size(payload: Any) -> int:
    """A cheap measure of how much work a request asks for: tensor elements, V1 instances, bytes."""
    kind = type(payload)
    if kind is InferRequest:
        inputs = payload.inputs
        if len(inputs) == 1:
            return math.prod(inputs[0].shape)
        return sum(math.prod(t.shape) for t in inputs)
    if kind is dict:
        rows = payload.get("instances", payload.get("inputs"))
        return len(rows) if type(rows) is list else 1
    if kind in (bytes, bytearray, str, list):
        return len(payload)
    return 1


class LoopBudget:
    def __init__(self, budget_s: float, learn_calls: int = LEARN_CALLS):
        self.budget = budget_s
        self.learn_calls = learn_calls
        self.on_loop = False
        self.largest = -1  # the largest request size seen finishing within the budget
        self._fast = 0  # calls in a row within the budget, while in threads
        self._strikes = 0.0  # recent calls over the budget, while on the loop
        self.disabled = budget_s <= 0

    def fits(self, size: int) -> bool:
        """May a request of this size run on the loop?"""
        return self.on_loop and size <= self.largest

    def record(self, seconds: float, size: int, was_on_loop: bool, cpu: float | None = None) -> None:
        """One call's wall time; for a call over the budget, ``cpu`` (its own CPU time, if known)
        tells work from waiting."""
        if seconds <= self.budget:
            if size > self.largest:
                self.largest = size
            if was_on_loop:
                self._strikes = max(0.0, self._strikes - STRIKE_DECAY)
            elif not self.on_loop:
                self._fast += 1
                if self._fast >= self.learn_calls:
                    self.on_loop, self._strikes = True, 0.0
            return
        waited = cpu is not None and cpu <= self.budget
        if not was_on_loop and waited:
            return  # neither fast nor slow: the hook did not run for most of that time
        if not was_on_loop:  # slow in a thread: this size is not cheap (yet); learning starts over
            self.largest = min(self.largest, size - 1)
            self._fast = 0
            return
        # Slow on the loop. One stray call (a GC pass, the OS preempting us) is forgiven; a second
        # soon after, or one far over the budget, sends the chain back to threads.
        self._strikes += WAIT_STRIKE if waited else 1
        if self._strikes >= 2 or seconds > 10 * self.budget:
            self.on_loop, self._fast = False, 0
            self.largest = min(self.largest, size - 1)
            self.learn_calls = min(self.learn_calls * 4, MAX_LEARN_CALLS)

    def never(self) -> None:
        """The chain cannot run on a running loop (it starts its own): threads from now on."""
        self.disabled = True
        self.on_loop = False


def needs_own_loop(exc: BaseException) -> bool:
    """The error a sync hook raises when it calls ``asyncio.run`` (or runs a loop) on a running loop."""
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("running event loop" in text or "another loop is running" in text)

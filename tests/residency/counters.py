"""Load counters shared by every copy of the test model module (each model folder imports its own)."""

from __future__ import annotations

import threading
from collections import defaultdict


class LoadCounter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loads = 0
        self.active = 0
        self.max_active = 0

    def begin(self) -> None:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)

    def end(self, ok: bool) -> None:
        with self.lock:
            self.active -= 1
            self.loads += ok


COUNTERS: dict[str, LoadCounter] = defaultdict(LoadCounter)  # by test folder

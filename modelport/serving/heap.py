"""What exists once the models have loaded, kept out of the garbage collector's full passes.

A full (oldest-generation) collection walks every container object the process tracks: the imported
frameworks, the loaded models' Python objects, the server's own. None of that becomes garbage while
the server serves, yet under load full passes keep coming and each stalls every request in flight
while it walks them all (bench/gc_pauses.py counts and times them). :meth:`Freezer.settle` freezes
what exists (``gc.freeze``, which moves lists and walks nothing): later passes walk only what
requests made since. What start-up left as cyclic garbage stays frozen: a bounded, one-time amount.

Frozen objects are still freed by reference counting when their last user goes; only reference
cycles among them would outlive it. So while the set of models changes (a load or unload through the
repository API, :meth:`Freezer.changing`) everything is back in the oldest generation, where the next
full pass finds an old model's cycles, and the server collects once and settles again when the change
is done; :meth:`Freezer.thaw` at shutdown undoes it for good. With models loaded on demand (residency)
or reloaded when their folder changes (``model_control_mode: poll``) the set of models changes by
itself while serving, so the server does not freeze then. Setting ``gc_freeze``.
"""

from __future__ import annotations

import contextlib
import gc
from typing import Iterator


class Freezer:
    def __init__(self) -> None:
        self.frozen = False
        self._changes = 0  # repository changes in progress: settle once the last one is done

    def settle(self, collect: bool = False) -> None:
        """Freeze what exists (not while a change is in progress); ``collect``: collect first, so that
        an unloaded model's cycles are freed rather than frozen. Freezing alone moves lists: no walk."""
        if self._changes:
            return
        if collect:
            gc.collect()
        gc.freeze()
        self.frozen = True

    def thaw(self) -> None:
        if self.frozen:
            gc.unfreeze()
            self.frozen = False

    @contextlib.contextmanager
    def changing(self) -> Iterator[None]:
        """Around a load or unload: thawed meanwhile, settled again afterwards if it was frozen."""
        was = self.frozen or self._changes > 0
        self.thaw()
        self._changes += 1
        try:
            yield
        finally:
            self._changes -= 1
            if was:
                self.settle(collect=True)

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
itself while serving. A polled folder is never frozen. With residency the heap is frozen once, at
start-up, and never again (``Freezer(refreeze=False)``): what a load makes is made after that
freeze, and residency loads a model into an instance made after it too (repository/residency.py),
so what an eviction lets go is never frozen. The one exception, a model loaded before the freeze
(pinned, or built in code) and evicted later, is checked as it goes (:meth:`Freezer.let_go`): if it
outlives its last user it is in a reference cycle, and the heap is thawed for good. Setting ``gc_freeze``.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import weakref
from typing import Any, Iterator

logger = logging.getLogger("modelport")


class Freezer:
    def __init__(self, refreeze: bool = True) -> None:
        self.frozen = False
        self.refreeze = refreeze  # False (residency): frozen once, at start-up; changes do not thaw
        self.epoch = 0  # settles so far: what existed at the latest one is frozen (while ``frozen``)
        self.given_up = ""  # why the heap was thawed for good, if it was
        self._changes = 0  # repository changes in progress: settle once the last one is done

    def settle(self, collect: bool = False) -> None:
        """Freeze what exists (not while a change is in progress); ``collect``: collect first, so that
        an unloaded model's cycles are freed rather than frozen. Freezing alone moves lists: no walk."""
        if self._changes or self.given_up:
            return
        if collect:
            gc.collect()
        gc.freeze()
        self.frozen = True
        self.epoch += 1

    def thaw(self) -> None:
        if self.frozen:
            gc.unfreeze()
            self.frozen = False

    def watch(self, obj: Any) -> Any:
        """A weak reference to ``obj`` for :meth:`let_go` (None: ``obj`` takes none)."""
        try:
            return weakref.ref(obj)
        except TypeError:
            return None

    def let_go(self, ref: Any, what: str) -> None:
        """``ref``'s object, frozen at a settle, was just dropped by its last known user. Still alive,
        it is in a reference cycle (or held elsewhere), which frozen it would keep forever: thaw for
        good, so the collector frees it (and whatever else does the same) as it did before freezing.
        ``ref`` None: nothing to check, thaw for good."""
        if self.frozen and (ref is None or ref() is not None):
            self.given_up = what
            logger.info("Heap freeze off for good: %s; full collections walk the whole heap again", self.given_up)
            self.thaw()

    @contextlib.contextmanager
    def changing(self) -> Iterator[None]:
        """Around a load or unload: thawed meanwhile, settled again afterwards if it was frozen
        (not with ``refreeze`` off: then nothing happens)."""
        if not self.refreeze:
            yield
            return
        was = self.frozen or self._changes > 0
        self.thaw()
        self._changes += 1
        try:
            yield
        finally:
            self._changes -= 1
            if was:
                self.settle(collect=True)

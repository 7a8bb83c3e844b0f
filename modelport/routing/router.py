"""The router: traffic policies per model name, blue-green flips, shadow traffic, automatic rollback.

The data plane asks ``choose(name, headers)`` when a request names no version; everything else here
is admin (set, promote, rollback) or after-the-fact (outcomes, mirrors). Changes are single
assignments on the event loop, so a flip is atomic: a request sees the old policy or the new one,
and a version must be READY (loaded and warmed up) before any policy may send it traffic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

import numpy as np

from ..errors import InvalidInput, ModelNotFound
from ..types import InferResponse
from .metrics import RoutingMetrics
from .policy import TrafficPolicy

logger = logging.getLogger("modelport")

# The response header (V1/V2 REST) and gRPC metadata key naming the version that answered.
VERSION_HEADER = "x-modelport-model-version"
_NONE = object()  # "no policy" as an entry of the rollback history


class Router:
    def __init__(self, repository: Any, metrics: RoutingMetrics | None = None, max_shadows: int = 64):
        self.repository = repository
        self.metrics = metrics
        self.max_shadows = max_shadows
        self._policies: dict[str, TrafficPolicy] = {}
        self._history: dict[str, list[Any]] = {}
        self._shadows: set[asyncio.Task] = set()

    # -- the request path --------------------------------------------------------------------------
    def choose(self, name: str, headers: dict | None) -> tuple[str | None, TrafficPolicy | None]:
        policy = self._policies.get(name)
        if policy is None:
            return None, None
        return policy.pick(headers), policy

    def outcome(self, name: str, version: str | None, policy: TrafficPolicy, ok: bool) -> None:
        """Feed the canary's error window; roll back when it says so."""
        rollback = policy.rollback
        if rollback is None or version != rollback.version or self._policies.get(name) is not policy:
            return
        if rollback.record(ok):
            errors = sum(1 for o in rollback.outcomes if not o)
            logger.warning("Model %s: canary version %s failed %d of its last %d requests (threshold %.0f%%); rolling back",
                           name, version, errors, len(rollback.outcomes), rollback.error_rate * 100)
            if self.metrics is not None:
                self.metrics.rollbacks.labels(name, version).inc()
            try:
                self.rollback(name)
            except Exception:  # noqa: BLE001 - nothing to restore: take the canary out instead
                weights = {v: w for v, w in policy.weights.items() if v != version}
                if weights:
                    self._policies[name] = TrafficPolicy(weights, policy.sticky)
                else:
                    self._policies.pop(name, None)

    def mirror(self, name: str, policy: TrafficPolicy, primary: Any, call: Callable[[str], Awaitable[Any]]) -> None:
        """Fire and forget: run ``call(candidate_version)`` and compare with the primary's answer."""
        shadow = policy.shadow
        if shadow is None or not shadow.due():
            return
        if len(self._shadows) >= self.max_shadows:
            if self.metrics is not None:
                self.metrics.shadow_dropped.labels(name, shadow.version).inc()
            return
        task = asyncio.ensure_future(self._shadow(name, shadow.version, shadow.tolerance, primary, call))
        self._shadows.add(task)
        task.add_done_callback(self._shadows.discard)

    async def _shadow(self, name: str, version: str, tolerance: float, primary: Any, call: Callable) -> None:
        started = time.perf_counter()
        try:
            answer = await call(version)
            agree = same_answer(primary, answer, tolerance)
        except Exception as exc:  # noqa: BLE001 - a shadow never fails anything; it is counted
            logger.debug("Shadow version %s of %s failed: %s", version, name, exc)
            agree = False
        m = self.metrics
        if m is not None:
            m.mirrored.labels(name, version).inc()
            m.shadow_latency.labels(name, version).observe(time.perf_counter() - started)
            if not agree:
                m.disagreements.labels(name, version).inc()

    async def drain_shadows(self) -> None:
        if self._shadows:
            await asyncio.gather(*list(self._shadows), return_exceptions=True)

    # -- admin ---------------------------------------------------------------------------------------
    def policy(self, name: str) -> dict[str, Any]:
        self._known(name)
        policy = self._policies.get(name)
        doc = policy.to_dict() if policy else {"traffic": None}
        doc["history"] = len(self._history.get(name, []))
        return doc

    def describe(self, name: str) -> dict[str, Any] | None:
        policy = self._policies.get(name)
        return policy.to_dict() if policy else None

    def set_policy(self, name: str, doc: Any, check: bool = True) -> dict[str, Any]:
        """Replace the policy of ``name`` (the old one can be rolled back to). ``check``: every version
        it names must be READY now (a run-time call); start-up policies wait for their versions."""
        self._known(name)
        policy = doc if isinstance(doc, TrafficPolicy) else TrafficPolicy.from_dict(doc, name)
        if check:
            for version in sorted(policy.versions()):
                self.repository.resolve(name, version)  # not found (404) / not ready (503)
        self._push(name)
        self._policies[name] = policy
        logger.info("Model %s: traffic %s", name, policy.to_dict())
        return self.policy(name)

    def promote(self, name: str, version: Any) -> dict[str, Any]:
        """Blue-green: every request without a version goes to ``version``, in one step."""
        if version is None or isinstance(version, bool) or not isinstance(version, (str, int)):
            raise InvalidInput(f"Promote of model {name} needs a \"version\"")
        return self.set_policy(name, TrafficPolicy({str(version): 100.0}))

    def rollback(self, name: str) -> dict[str, Any]:
        """Restore the policy before the last change (or no policy, if there was none)."""
        self._known(name)
        history = self._history.get(name)
        if not history:
            raise InvalidInput(f"Model {name} has no earlier traffic policy to roll back to")
        previous = history[-1]
        if previous is not _NONE:
            for version in sorted(previous.weights):
                self.repository.resolve(name, version)
        history.pop()
        if previous is _NONE:
            self._policies.pop(name, None)
        else:
            self._policies[name] = _fresh(previous)
        logger.info("Model %s: traffic rolled back to %s", name, self.describe(name))
        return self.policy(name)

    def clear(self, name: str) -> None:
        self._policies.pop(name, None)
        self._history.pop(name, None)

    def _push(self, name: str) -> None:
        history = self._history.setdefault(name, [])
        history.append(self._policies.get(name, _NONE))
        del history[:-32]  # a bounded history

    def _known(self, name: str) -> None:
        if not self.repository.entries_of(name):
            raise ModelNotFound(name)


def _fresh(policy: TrafficPolicy) -> TrafficPolicy:
    """The same policy with its counters reset (a restored canary starts a new error window)."""
    return TrafficPolicy.from_dict(policy.to_dict(), "")


def same_answer(primary: Any, candidate: Any, tolerance: float) -> bool:
    """Whether two answers agree: V2 outputs by name (numbers within ``tolerance``), V1 JSON alike."""
    if isinstance(primary, InferResponse):
        if not isinstance(candidate, InferResponse):
            return False
        a = {o.name: o.as_numpy() for o in primary.outputs}
        b = {o.name: o.as_numpy() for o in candidate.outputs}
        return a.keys() == b.keys() and all(_arrays_agree(a[k], b[k], tolerance) for k in a)
    if isinstance(primary, dict) and isinstance(candidate, dict):
        if primary.keys() != candidate.keys():
            return False
        return all(_json_agree(primary[k], candidate[k], tolerance) for k in primary)
    return _json_agree(primary, candidate, tolerance)


def _arrays_agree(a: np.ndarray, b: np.ndarray, tolerance: float) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "biuf" and b.dtype.kind in "biuf":
        return bool(np.allclose(a, b, rtol=0.0, atol=tolerance, equal_nan=True))
    return bool(np.array_equal(a, b))


def _json_agree(a: Any, b: Any, tolerance: float) -> bool:
    if a == b:
        return True
    try:
        x, y = np.asarray(a), np.asarray(b)
    except Exception:  # noqa: BLE001
        return False
    return x.dtype.kind in "biuf" and y.dtype.kind in "biuf" and _arrays_agree(x, y, tolerance)


__all__ = ["Router", "VERSION_HEADER", "same_answer"]

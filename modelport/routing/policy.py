"""A traffic policy on one model name: which version answers a request that names no version.

Pure and synchronous (no I/O): the router owns policies and calls ``pick`` on the request path.

- Weights split exactly over a window of ``sum(weights)`` requests with smooth weighted round-robin
  (nginx's algorithm), so 90/10 is 90/10 after every 100 requests, not "about" 90/10.
- ``sticky``: a header whose value is hashed onto the weights, so one user always sees one version
  (requests without the header fall back to round-robin).
- ``shadow``: a percentage of requests is mirrored to a candidate version (counted exactly, too).
- ``rollback``: an automatic rollback when a canary's error rate over its last ``window`` requests
  exceeds ``error_rate``.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput


@dataclass
class Shadow:
    version: str
    percent: float = 100.0
    tolerance: float = 0.0  # absolute tolerance when comparing numeric outputs; 0 means exact
    _credit: float = field(default=0.0, repr=False)

    def due(self) -> bool:
        """True for exactly ``percent`` of calls (an accumulator, not a coin flip)."""
        self._credit += self.percent
        if self._credit >= 100.0:
            self._credit -= 100.0
            return True
        return False


@dataclass
class AutoRollback:
    version: str
    error_rate: float
    window: int = 100
    min_requests: int = 20
    outcomes: deque = field(default_factory=deque, repr=False)

    def record(self, ok: bool) -> bool:
        """Record one outcome of the canary; True when the error rate now exceeds the threshold."""
        self.outcomes.append(ok)
        if len(self.outcomes) > self.window:
            self.outcomes.popleft()
        if len(self.outcomes) < self.min_requests:
            return False
        errors = sum(1 for o in self.outcomes if not o)
        return errors / len(self.outcomes) > self.error_rate


class TrafficPolicy:
    def __init__(
        self,
        weights: dict[str, float],
        sticky: str | None = None,
        shadow: Shadow | None = None,
        rollback: AutoRollback | None = None,
    ):
        self.weights = {str(k): v for k, v in weights.items() if v > 0}
        self.sticky = sticky.lower() if sticky else None
        self.shadow = shadow
        self.rollback = rollback
        self._total = sum(self.weights.values())
        self._current = {v: 0.0 for v in self.weights}
        # Cumulative weights for the sticky hash, in a stable order.
        self._cumulative: list[tuple[float, str]] = []
        acc = 0.0
        for version in sorted(self.weights):
            acc += self.weights[version]
            self._cumulative.append((acc, version))

    # -- the request path --------------------------------------------------------------------------
    def pick(self, headers: dict | None) -> str:
        if len(self.weights) == 1:
            return next(iter(self.weights))
        if self.sticky and headers:
            key = headers.get(self.sticky)
            if key:
                return self._by_hash(key)
        # Smooth weighted round-robin: everyone gains its weight, the richest answers and pays the total.
        current = self._current
        for version, weight in self.weights.items():
            current[version] += weight
        chosen = max(current, key=current.__getitem__)
        current[chosen] -= self._total
        return chosen

    def _by_hash(self, key: str) -> str:
        digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
        point = int.from_bytes(digest, "big") / 2**64 * self._total
        for bound, version in self._cumulative:
            if point < bound:
                return version
        return self._cumulative[-1][1]

    # -- description -------------------------------------------------------------------------------
    def versions(self) -> set[str]:
        out = set(self.weights)
        if self.shadow:
            out.add(self.shadow.version)
        return out

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"traffic": {k: _num(v) for k, v in self.weights.items()}}
        if self.sticky:
            doc["sticky"] = self.sticky
        if self.shadow:
            doc["shadow"] = {"version": self.shadow.version, "percent": _num(self.shadow.percent), "tolerance": self.shadow.tolerance}
        if self.rollback:
            r = self.rollback
            doc["rollback"] = {"version": r.version, "error_rate": r.error_rate, "window": r.window, "min_requests": r.min_requests}
        return doc

    @classmethod
    def from_dict(cls, doc: Any, model: str) -> "TrafficPolicy":
        """A policy from JSON: either bare weights ``{"2": 90, "3": 10}`` or
        ``{"traffic": {...}, "sticky": "x-user-id", "shadow": {...}, "rollback": {...}}``."""
        if not isinstance(doc, dict) or not doc:
            raise InvalidInput(f"Traffic policy of model {model} must be a JSON object such as {{\"traffic\": {{\"1\": 90, \"2\": 10}}}}")
        if "traffic" not in doc and all(_is_number(v) for v in doc.values()):
            doc = {"traffic": doc}
        unknown = sorted(set(doc) - {"traffic", "sticky", "shadow", "rollback"})
        if unknown:
            raise InvalidInput(f"Traffic policy of model {model}: unknown key(s) {', '.join(unknown)}; known: traffic, sticky, shadow, rollback")
        weights = doc.get("traffic")
        if not isinstance(weights, dict) or not weights:
            raise InvalidInput(f"Traffic policy of model {model}: \"traffic\" must map versions to weights, e.g. {{\"1\": 90, \"2\": 10}}")
        for version, weight in weights.items():
            if not _is_number(weight) or weight < 0:
                raise InvalidInput(f"Traffic policy of model {model}: the weight of version {version} must be a non-negative number, got {weight!r}")
        if not any(w > 0 for w in weights.values()):
            raise InvalidInput(f"Traffic policy of model {model}: at least one weight must be positive")
        sticky = doc.get("sticky")
        if sticky is not None and (not isinstance(sticky, str) or not sticky):
            raise InvalidInput(f"Traffic policy of model {model}: \"sticky\" must be a header name such as \"x-user-id\"")
        shadow = None
        if doc.get("shadow") is not None:
            s = _object(doc["shadow"], "shadow", model, {"version", "percent", "tolerance"})
            percent = s.get("percent", 100)
            tolerance = s.get("tolerance", 0.0)
            if not _is_number(percent) or not 0 <= percent <= 100:
                raise InvalidInput(f"Traffic policy of model {model}: shadow percent must be between 0 and 100")
            if not _is_number(tolerance) or tolerance < 0:
                raise InvalidInput(f"Traffic policy of model {model}: shadow tolerance must be a non-negative number")
            shadow = Shadow(_version(s, "shadow", model), float(percent), float(tolerance))
        rollback = None
        if doc.get("rollback") is not None:
            r = _object(doc["rollback"], "rollback", model, {"version", "error_rate", "window", "min_requests"})
            rate, window = r.get("error_rate"), r.get("window", 100)
            minimum = r.get("min_requests", min(20, window) if _is_number(window) else 20)
            if not _is_number(rate) or not 0 <= rate < 1:
                raise InvalidInput(f"Traffic policy of model {model}: rollback error_rate must be a number in [0, 1)")
            for key, value in (("window", window), ("min_requests", minimum)):
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise InvalidInput(f"Traffic policy of model {model}: rollback {key} must be a positive integer")
            rollback = AutoRollback(_version(r, "rollback", model), float(rate), window, min(minimum, window))
        return cls({str(k): float(v) for k, v in weights.items()}, sticky, shadow, rollback)


def _object(value: Any, key: str, model: str, known: set[str]) -> dict:
    if not isinstance(value, dict):
        raise InvalidInput(f"Traffic policy of model {model}: \"{key}\" must be an object")
    unknown = sorted(set(value) - known)
    if unknown:
        raise InvalidInput(f"Traffic policy of model {model}: unknown {key} key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return value


def _version(doc: dict, key: str, model: str) -> str:
    version = doc.get("version")
    if version is None or isinstance(version, bool) or not isinstance(version, (str, int)):
        raise InvalidInput(f"Traffic policy of model {model}: {key} needs a \"version\"")
    return str(version)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value

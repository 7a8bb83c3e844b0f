"""Token-bucket rate limits per client and per model, with a bounded table of clients.

A limit is written ``"100/minute"`` (burst = 100) or ``"100/minute;burst=20"``. A bucket holds up to
``burst`` tokens and refills at ``rate`` tokens a second; a request takes one. The client table is an
LRU of at most ``max_clients`` buckets: memory stays bounded whatever the number of distinct
clients, and a client pushed out starts again with a full bucket.
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from dataclasses import dataclass

from ..errors import RateLimited
from ..settings import SettingsError

_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}
_LIMIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d*)\s*([a-z]+?)s?\s*(?:;\s*burst\s*=\s*(\d+)\s*)?$")


@dataclass(frozen=True)
class Limit:
    rate: float  # tokens per second
    burst: float
    text: str


def parse_limit(text: str, setting: str = "rate_limit") -> Limit:
    """``"100/minute"``, ``"5/s"``, ``"1000/hour;burst=50"``, ``"10/5minutes"`` → a Limit."""
    m = _LIMIT.match(str(text).lower())
    if not m or m.group(3) not in _PERIODS:
        raise SettingsError(
            f"Setting {setting}: {text!r} is not a rate like '100/minute', '1000/hour' or '10/second;burst=20'"
        )
    count = float(m.group(1))
    seconds = _PERIODS[m.group(3)] * (int(m.group(2)) if m.group(2) else 1)
    burst = float(m.group(4)) if m.group(4) else count
    if count <= 0 or burst < 1:
        raise SettingsError(f"Setting {setting}: {text!r} must allow at least one request")
    return Limit(count / seconds, burst, str(text))


class TokenBucket:
    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, limit: Limit, now: float | None = None):
        self.rate = limit.rate
        self.burst = limit.burst
        self.tokens = limit.burst
        self.stamp = time.monotonic() if now is None else now

    def take(self, now: float) -> float:
        """Take a token: 0.0 when granted, else the seconds until one will be there."""
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return 0.0
        self.tokens = tokens
        return (1.0 - tokens) / self.rate


class BucketTable:
    """Buckets by key (client or model), least recently used dropped past ``max_size``."""

    def __init__(self, limit: Limit, max_size: int):
        self.limit = limit
        self.max_size = max_size
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, now: float) -> float:
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = TokenBucket(self.limit, now)
            if len(buckets) > self.max_size:
                buckets.popitem(last=False)
        else:
            buckets.move_to_end(key)
        return bucket.take(now)

    def __len__(self) -> int:
        return len(self._buckets)


def over_limit(what: str, limit: Limit, wait: float) -> RateLimited:
    seconds = max(1, math.ceil(wait))
    return RateLimited(f"Rate limit exceeded for {what} ({limit.text}); retry in {seconds} s", seconds)

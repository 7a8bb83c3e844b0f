"""Token-bucket rate limits per client and per model, with a bounded table of clients.

A limit is written ``"100/minute"`` (burst = 100) or ``"100/minute;burst=20"``. A bucket holds up to
``burst`` tokens and refills at ``rate`` tokens a second; a request takes one. The client table holds
at most ``max_clients`` buckets, so memory stays bounded whatever the number of distinct clients.
When it is full, a new client takes the place of one whose bucket has refilled (dropping a full bucket
loses nothing: the client would start again with a full one anyway); when none has, the new client is
refused (429) until one has. A throttled client is never reset by a flood of new ones: a refused new
client waits, where an evicted throttled one would have been handed a fresh burst.

``rate_limit_header`` names the client only on connections from ``trusted_proxies`` (a proxy that
sets the header itself); anyone else could pick a new bucket per request by changing it.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import math
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

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


_LOOK = 32  # least recently used buckets looked at for a refilled one, when the table is full


class ClientTableFull(RateLimited):
    """The client table is full of clients still being limited: a new client waits (429)."""


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
            if len(buckets) >= self.max_size:
                self._make_room(now)
            bucket = buckets[key] = TokenBucket(self.limit, now)
        else:
            buckets.move_to_end(key)
        return bucket.take(now)

    def _make_room(self, now: float) -> None:
        """Drop a refilled bucket among the least recently used (a bounded look: no scan of the
        whole table per new client); none refilled: refuse the newcomer until one is."""
        burst, rate = self.limit.burst, self.limit.rate
        soonest = math.inf
        for n, (key, bucket) in enumerate(self._buckets.items()):
            if n == _LOOK:
                break
            missing = burst - min(burst, bucket.tokens + (now - bucket.stamp) * rate)
            if missing <= 0:
                del self._buckets[key]
                return
            soonest = min(soonest, missing / rate)
        raise ClientTableFull(
            f"Too many clients are rate limited at once (rate_limit_clients {self.max_size}); "
            f"retry in {max(1, math.ceil(soonest))} s", max(1, math.ceil(soonest)))

    def __len__(self) -> int:
        return len(self._buckets)


def over_limit(what: str, limit: Limit, wait: float) -> RateLimited:
    seconds = max(1, math.ceil(wait))
    return RateLimited(f"Rate limit exceeded for {what} ({limit.text}); retry in {seconds} s", seconds)


def proxy_check(value: Any) -> Callable[[str | None], bool] | None:
    """``trusted_proxies`` (addresses or CIDRs, a list or comma-separated) as ``is_trusted(address)``;
    None when no proxy is trusted."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str) and value.strip().startswith("["):  # a JSON list (MODELPORT_TRUSTED_PROXIES)
        try:
            value = json.loads(value)
        except ValueError:
            raise SettingsError(f"Setting trusted_proxies: {value!r} is not a JSON list") from None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise SettingsError("Setting trusted_proxies: must be a list of addresses or CIDRs, or a comma-separated string")
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError:
            raise SettingsError(f"Setting trusted_proxies: {item!r} is not an IP address or CIDR") from None

    @functools.lru_cache(maxsize=1024)
    def is_trusted(address: str | None) -> bool:
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        if getattr(ip, "ipv4_mapped", None) is not None:  # ::ffff:10.0.0.1 on a dual-stack socket
            ip = ip.ipv4_mapped
        return any(ip in net for net in networks)

    return is_trusted

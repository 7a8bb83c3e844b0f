"""The controls in front of the data plane: one ``check`` per request, whichever door it came by.

Each transport calls :meth:`Controls.check` once, at the top of its request handling, with the kind of
operation, the model it names (if any), the request headers (gRPC metadata) and the client address.
``check`` authenticates and authorizes (API keys), then takes rate-limit tokens; it raises the
protocol-neutral error the transport's one error table turns into a status. Per-model controls
(response cache, input contracts, the model's rate limit) are built once per model, when the model
is registered, by :meth:`prepare`.
"""

from __future__ import annotations

import logging
import time
import weakref
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from ..doors import ADMIN, INFER, KINDS, PUBLIC, Door
from ..errors import PermissionDenied
from ..settings import ModelSettings, ServerSettings, SettingsError, model_option
from .auth import CALLER, KeyStore, authorize, load_keys
from .cache import ResponseCache, cache_config
from .contracts import Contract
from .ratelimit import BucketTable, ClientTableFull, Limit, TokenBucket, over_limit, parse_limit, proxy_check

logger = logging.getLogger("modelport")

# Model sources whose handler reads the caller's key (doors.py): checked once the body is parsed, or filtered.
_LATER = ("body", "all", "every")
_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05)


@dataclass
class ModelControls:
    """What one model (one version) has switched on."""

    name: str
    cache: ResponseCache | None = None
    contract: Contract | None = None
    bucket: TokenBucket | None = None
    limit: Limit | None = None


class Controls:
    def __init__(self, settings: ServerSettings, repository: Any, registry: Any = None):
        s = settings
        self.repository = repository
        self.keys = KeyStore(load_keys(s.api_keys, s.api_keys_path))
        # The settings that make a public door (its ``protected_by``) need a key.
        self.protected = {"auth_health": bool(s.auth_health), "auth_metrics": bool(s.auth_metrics)}
        if s.repository_api not in ("on", "admin", "off"):
            raise SettingsError(f"Setting repository_api: {s.repository_api!r} is not on, admin or off")
        if s.repository_api == "admin" and not self.keys:
            raise SettingsError("Setting repository_api: 'admin' needs api_keys (or api_keys_path) with an admin key")
        self.repository_api = s.repository_api
        # The client header counts only on connections from a trusted proxy (it sets the header itself).
        self.trusted_proxy = proxy_check(s.trusted_proxies)
        self.client_header = (s.rate_limit_header or "").lower() or None
        if self.client_header and self.trusted_proxy is None:
            logger.warning("Setting rate_limit_header is ignored: no trusted_proxies are set, so clients are told "
                           "apart by API key or address (the header could be forged)")
            self.client_header = None
        self.clients = BucketTable(parse_limit(s.rate_limit), s.rate_limit_clients) if s.rate_limit else None
        self.model_default = parse_limit(s.rate_limit_model, "rate_limit_model") if s.rate_limit_model else None
        if s.rate_limit_clients < 1:
            raise SettingsError("Setting rate_limit_clients: must be at least 1")
        # Per model object (so a new version or a reload starts afresh), only for models with a control on.
        self.models: weakref.WeakKeyDictionary[Any, ModelControls] = weakref.WeakKeyDictionary()
        self._metrics(registry)

    @property
    def at_edge(self) -> bool:
        """Whether requests need a check at the transports at all (else they skip it entirely)."""
        return bool(self.keys) or self.clients is not None or self.repository_api != "on"

    # -- per request -------------------------------------------------------------------------------
    def check(self, door: Door, model: str | None, headers: dict[str, str], client: str | None, count: bool = True) -> Any:
        """Raise Unauthenticated, PermissionDenied or RateLimited, or return the caller's key (None: no key).

        ``model`` is the name the request gives where the door says it comes from (None at a door
        whose model is in the body: see ``authorize_model``). ``count`` false: authenticate only (a
        gRPC stream, before its messages are counted one by one)."""
        key = None
        if door.kind == ADMIN and self.repository_api == "off":
            raise PermissionDenied("The repository API is turned off on this server (repository_api: off)")
        if self.keys and (door.kind != PUBLIC or self.protected.get(door.protected_by, False)):  # a public door: only if protected
            key = self.keys.authenticate(headers)
            authorize(key, door, model)
        if door.model in _LATER or door.aggregate:  # the handler checks or filters by the key itself
            CALLER.set(key)
        if door.kind != INFER or not count:
            return key
        if self.clients is not None:
            if key is not None:
                who, klass = "key:" + key.name, "api_key"
            elif self.client_header and headers.get(self.client_header) and self.trusted_proxy(client):
                who, klass = "header:" + headers[self.client_header], "header"
            else:
                who, klass = "address:" + (client or "unknown"), "address"
            try:
                wait = self.clients.take(who, time.monotonic())
            except ClientTableFull:
                self._limited.labels(model or "", "table_full").inc()
                raise
            if wait:
                self._limited.labels(model or "", klass).inc()
                raise over_limit("this client", self.clients.limit, wait)
        return key

    def take_model_token(self, mc: ModelControls) -> None:
        """The model's own rate limit (checked by the data plane, which knows the model)."""
        wait = mc.bucket.take(time.monotonic())
        if wait:
            self._limited.labels(mc.name, "model").inc()
            raise over_limit(f"model {mc.name}", mc.limit, wait)

    def lookup(self, name: str, version: str | None) -> ModelControls | None:
        entry = self.repository._find(name, version)
        if entry is None or entry.model is None:
            return None
        return self.models.get(entry.model)

    # -- per model -------------------------------------------------------------------------------
    def prepare(self, model: Any, settings: ModelSettings | None) -> None:
        """Build (or rebuild, emptying its cache) the controls of a model being registered."""
        name = model.name
        limit_text = model_option(model, settings, "rate_limit", None)
        limit = parse_limit(limit_text, f"{name}.rate_limit") if limit_text else self.model_default
        schema = model_option(model, settings, "input_schema", None)
        max_rows = model_option(model, settings, "max_rows", 0)
        max_bytes = model_option(model, settings, "max_request_bytes", 0)
        config = cache_config(model_option(model, settings, "response_cache", None), name)
        contract = Contract(name, schema, max_rows, max_bytes) if (schema is not None or max_rows or max_bytes) else None
        self.models.pop(model, None)
        if limit is None and contract is None and config is None:
            return
        self.models[model] = ModelControls(
            name, ResponseCache(config) if config else None, contract, TokenBucket(limit) if limit else None, limit
        )

    def forget(self, name: str) -> None:
        """Drop the controls (and cached answers) of every version of ``name``: it is unloaded or reloading."""
        for model in [m for m, mc in self.models.items() if mc.name == name]:
            mc = self.models.pop(model, None)
            if mc is not None and mc.cache is not None:
                mc.cache.clear()

    # -- metrics -----------------------------------------------------------------------------------
    def _metrics(self, registry: Any) -> None:
        from prometheus_client import CollectorRegistry

        r = registry if registry is not None else CollectorRegistry()
        self._limited = Counter(
            "modelport_rate_limited", "Requests refused by a rate limit", ["model", "client_class"], registry=r
        )
        self.cache_hits = Counter("modelport_cache_hits", "Responses served from the response cache", ["model"], registry=r)
        self.cache_misses = Counter("modelport_cache_misses", "Cacheable requests that ran the model", ["model"], registry=r)
        self.cache_hit_latency = Histogram(
            "modelport_cache_hit_duration_seconds", "Time to serve a response cache hit", ["model"], buckets=_BUCKETS, registry=r
        )
        r.register(_CacheGauges(self))


class _CacheGauges:
    """Entries and bytes per model, read from the caches when scraped."""

    def __init__(self, controls: Controls):
        self._controls = controls

    def collect(self):
        entries = GaugeMetricFamily("modelport_cache_entries", "Responses held in the response cache", labels=["model"])
        size = GaugeMetricFamily("modelport_cache_bytes", "Bytes held in the response cache", labels=["model"])
        totals: dict[str, list[int]] = {}
        for mc in list(self._controls.models.values()):
            if mc.cache is not None:
                t = totals.setdefault(mc.name, [0, 0])
                t[0] += len(mc.cache)
                t[1] += mc.cache.bytes
        for name, (n, b) in sorted(totals.items()):
            entries.add_metric([name], n)
            size.add_metric([name], b)
        yield entries
        yield size


__all__ = ["Controls", "ModelControls", "KINDS"]

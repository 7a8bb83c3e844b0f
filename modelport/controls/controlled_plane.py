"""The data plane with the per-model controls wrapped around inference.

Order per request: the model's rate limit, its input contract, then the response cache. A cache hit
returns before the data plane's queue, batcher and runner; a miss goes through them as usual.
Models with none of these switched on take the plain path after one dictionary lookup.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ..dataplane.plane import LOAD_HEADER, DataPlane
from ..errors import ServerNotReady
from ..types import InferRequest, InferResponse
from .cache import cache_key, hit_response
from .controls import Controls

CACHE_HEADER = "x-modelport-cache"


def _bypass(headers: dict | None, request: InferRequest) -> bool:
    if request.parameters.get("cache") is False:
        return True
    if not headers:
        return False
    if headers.get(CACHE_HEADER, "").lower() == "bypass":
        return True
    control = headers.get("cache-control", "").lower()
    return "no-cache" in control or "no-store" in control


class ControlledDataPlane(DataPlane):
    def __init__(self, *args: Any, controls: Controls, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.controls = controls
        # Optional ``observe(model, version, hit, seconds)`` for each cache lookup (e.g. statistics'
        # cache_hit / cache_miss); set by the composition root.
        self.cache_observer: Callable[[str, str | None, bool, float], None] | None = None

    async def infer(self, request: InferRequest, headers: dict | None = None) -> tuple[InferResponse, dict]:
        controls = self.controls
        mc = controls.lookup(request.model_name, request.model_version) if controls.models else None
        if mc is None:
            return await super().infer(request, headers)
        if mc.bucket is not None:
            controls.take_model_token(mc)
        if mc.contract is not None:
            mc.contract.check_v2(request)
        cache = mc.cache
        if cache is None:  # a rate limit or contract only: nothing more to decide here
            return await super().infer(request, headers)
        # A request a traffic policy routes (routing) is not cached: the key would name the wrong version.
        routed = request.model_version is None and self.router is not None and self.router.describe(request.model_name)
        if routed or _bypass(headers, request):
            return await super().infer(request, headers)
        started = time.perf_counter()
        if self.draining:
            raise ServerNotReady("Server is shutting down")
        entry = self.repository.resolve(request.model_name, request.model_version)
        key = cache_key(request, entry.name, entry.version, headers, cache.config.vary)
        found = cache.get(key, time.monotonic())
        if found is not None:
            controls.cache_hits.labels(mc.name).inc()
            response = hit_response(found[0], request)
            elapsed = time.perf_counter() - started
            controls.cache_hit_latency.labels(mc.name).observe(elapsed)
            if self.metrics is not None:  # a hit is still a request served
                self._latency(entry.name, "v2")(elapsed)
            if self.cache_observer is not None:
                self.cache_observer(entry.name, entry.version, True, elapsed)
            # A hit waits for no load: the miss's x-modelport-load-seconds is not replayed.
            return response, {**{k: v for k, v in found[1].items() if k != LOAD_HEADER}, CACHE_HEADER: "hit"}
        (response, response_headers), ran = await cache.run_once(key, lambda: super(ControlledDataPlane, self).infer(request, headers))
        if self.cache_observer is not None:
            self.cache_observer(entry.name, entry.version, not ran, time.perf_counter() - started)
        if ran:
            controls.cache_misses.labels(mc.name).inc()
            return response, {**response_headers, CACHE_HEADER: "miss"}
        # Waited for an identical request that ran the model: a hit for this caller.
        controls.cache_hits.labels(mc.name).inc()
        if self.metrics is not None:
            self._latency(entry.name, "v2")(time.perf_counter() - started)
        return hit_response(response, request), {**response_headers, CACHE_HEADER: "hit"}

    async def infer_v1(self, name: str, payload: dict, headers: dict | None = None, verb: str = "predict") -> tuple[Any, dict]:
        controls = self.controls
        mc = controls.lookup(name, None) if controls.models else None
        if mc is not None:
            if mc.bucket is not None:
                controls.take_model_token(mc)
            if mc.contract is not None:
                mc.contract.check_v1(payload, headers)
        return await super().infer_v1(name, payload, headers, verb)

    # Streams (modelport/streaming.py) and the OpenAI routes: the model's rate limit and input contract
    # apply as to any request; a stream is never cached.
    async def infer_stream(self, request: InferRequest, headers: dict | None = None) -> Any:
        controls = self.controls
        mc = controls.lookup(request.model_name, request.model_version) if controls.models else None
        if mc is not None:
            if mc.bucket is not None:
                controls.take_model_token(mc)
            if mc.contract is not None:
                mc.contract.check_v2(request)
        return await super().infer_stream(request, headers)

    async def call(self, name: str, method: str, *args: Any, **kwargs: Any) -> Any:
        controls = self.controls
        mc = controls.lookup(name, None) if controls.models else None
        if mc is not None and mc.bucket is not None:
            controls.take_model_token(mc)
        return await super().call(name, method, *args, **kwargs)

    async def apply_in_this_worker(self, action: str, name: str, arg: Any = None) -> Any:
        # In every front-end worker the action reaches (see worker_sync.py), not only the one asked.
        if action == "load":
            self.controls.forget(name)  # the reloaded versions get fresh controls (and an empty cache)
        result = await super().apply_in_this_worker(action, name, arg)
        if action == "unload":
            self.controls.forget(name)
        return result


__all__ = ["ControlledDataPlane", "CACHE_HEADER"]

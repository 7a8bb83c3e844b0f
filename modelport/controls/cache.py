"""A per-model response cache: LRU bounded by entries and bytes, with a time to live.

The key hashes what decides the answer, as Triton's cache does: model name and version, each input's
name, datatype, shape and raw little-endian bytes, the request parameters, and the requested outputs
with their parameters. Encoding choices (JSON or binary tensors, raw gRPC contents, binary outputs)
and the request id are left out, so the same tensors sent any way share one entry. Request headers
are left out too, unless the model declares the ones its answer depends on (``"vary": ["x-user",
"authorization"]``, as HTTP's ``Vary``): their values (absent and empty apart) join the key.

The cache sits in the data plane, behind the doors: a request reaches it only after its API key, its
scopes and the client rate limit passed (controls/controls.py at the REST and gRPC edges).

Concurrent identical misses run the model once (single flight): later callers wait for the first.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import orjson

from ..dataplane.plane import response_id
from ..settings import SettingsError
from ..types import InferRequest, InferResponse, to_np_dtype
from ..wire.raw import array_to_raw

# Parameters that only say how tensors travel, or how long to wait: never part of the answer.
_TRANSPORT_PARAMETERS = frozenset(("binary_data", "binary_data_size", "binary_data_output", "timeout", "cache"))
_OVERHEAD = 256  # bytes counted per entry on top of its tensors


def _params(parameters: dict | None) -> bytes:
    if not parameters:
        return b"{}"
    kept = {k: v for k, v in parameters.items() if k not in _TRANSPORT_PARAMETERS}
    return orjson.dumps(kept, option=orjson.OPT_SORT_KEYS, default=str)


def cache_key(request: InferRequest, model_name: str, version: str | None,
              headers: dict | None = None, vary: tuple[str, ...] = ()) -> bytes:
    """A 128-bit digest of everything that decides the response (see the module docstring)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(orjson.dumps([model_name, version]))
    if vary:  # lower-case names (the doors' headers are); None marks an absent header
        h.update(orjson.dumps([(headers or {}).get(name) for name in vary]))
    h.update(_params(request.parameters))
    for tensor in sorted(request.inputs, key=lambda t: t.name):
        data = array_to_raw(tensor.as_numpy(), tensor.datatype)
        h.update(orjson.dumps([tensor.name, tensor.datatype, list(tensor.shape), len(data)]))
        h.update(_params(tensor.parameters))
        h.update(data)
    for out in request.request_outputs or ():
        h.update(orjson.dumps(out.name))
        h.update(_params(out.parameters))
    return h.digest()


@dataclass(frozen=True)
class CacheConfig:
    max_entries: int = 1000
    max_bytes: int = 64 * 1024 * 1024
    ttl: float = 0.0  # seconds; 0: entries live until evicted
    vary: tuple[str, ...] = ()  # request headers the answer depends on (lower case): part of the key


def cache_config(value: Any, model: str) -> CacheConfig | None:
    """``response_cache`` from model settings or a class attribute: true, or {max_entries, max_bytes, ttl, vary}."""
    if value is None or value is False:
        return None
    if value is True:
        return CacheConfig()
    if not isinstance(value, dict):
        raise SettingsError(f"Model {model}: response_cache must be true or an object with max_entries, max_bytes, ttl, vary")
    unknown = set(value) - {"max_entries", "max_bytes", "ttl", "vary", "enabled"}
    if unknown:
        raise SettingsError(f"Model {model}: response_cache has unknown field(s) {', '.join(sorted(unknown))}")
    if value.get("enabled") is False:
        return None
    vary = value.get("vary", [])
    if not isinstance(vary, list) or not all(isinstance(v, str) and v.strip() for v in vary):
        raise SettingsError(f"Model {model}: response_cache vary must be a list of request header names")
    try:
        config = CacheConfig(
            int(value.get("max_entries", CacheConfig.max_entries)),
            int(value.get("max_bytes", CacheConfig.max_bytes)),
            float(value.get("ttl", CacheConfig.ttl)),
            tuple(sorted({v.strip().lower() for v in vary})),
        )
    except (TypeError, ValueError):
        raise SettingsError(f"Model {model}: response_cache max_entries, max_bytes and ttl must be numbers") from None
    if config.max_entries < 1 or config.max_bytes < 1 or config.ttl < 0:
        raise SettingsError(f"Model {model}: response_cache needs max_entries and max_bytes of at least 1 and a ttl of 0 or more")
    return config


def _size(response: InferResponse) -> int:
    size = _OVERHEAD
    for tensor in response.outputs:
        if tensor.datatype == "BYTES":
            size += sum(len(v) if isinstance(v, (bytes, str)) else 8 for v in tensor.as_numpy().ravel())
        else:
            size += math.prod(tensor.shape) * to_np_dtype(tensor.datatype).itemsize
    return size


Run = Callable[[], Awaitable[tuple[InferResponse, dict]]]


class ResponseCache:
    def __init__(self, config: CacheConfig):
        self.config = config
        self.bytes = 0
        self._entries: OrderedDict[bytes, tuple[float, int, InferResponse, dict]] = OrderedDict()
        self._pending: dict[bytes, asyncio.Future] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def get(self, key: bytes, now: float) -> tuple[InferResponse, dict] | None:
        item = self._entries.get(key)
        if item is None:
            return None
        expires, size, response, headers = item
        if expires and now >= expires:
            del self._entries[key]
            self.bytes -= size
            return None
        self._entries.move_to_end(key)
        return response, headers

    def put(self, key: bytes, response: InferResponse, headers: dict, now: float) -> None:
        size = _size(response)
        if size > self.config.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        expires = now + self.config.ttl if self.config.ttl else 0.0
        self._entries[key] = (expires, size, response, headers)
        self.bytes += size
        while len(self._entries) > self.config.max_entries or self.bytes > self.config.max_bytes:
            _, (_, dropped, _, _) = self._entries.popitem(last=False)
            self.bytes -= dropped

    async def run_once(self, key: bytes, run: Run) -> tuple[tuple[InferResponse, dict], bool]:
        """The answer for ``key``, computed by ``run`` unless an identical request is computing it now.

        Returns the answer and whether this call ran the model."""
        while True:
            pending = self._pending.get(key)
            if pending is None:
                break
            try:
                return await asyncio.shield(pending), False
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not pending.cancelled() or (task is not None and task.cancelling()):
                    raise
                # The caller that ran the model gave up (its client went away): try again ourselves.
        future = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            answer = await run()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # marked as retrieved: nobody may be waiting
            raise
        else:
            future.set_result(answer)
            self.put(key, answer[0], answer[1], time.monotonic())
            return answer, True
        finally:
            del self._pending[key]


def hit_response(stored: InferResponse, request: InferRequest) -> InferResponse:
    """A cached answer as this request's response: its own id (a new one when it sent none, as every
    V2 answer has), the stored tensors (never mutated)."""
    return InferResponse(
        request.id or response_id(), stored.model_name, list(stored.outputs), model_version=stored.model_version,
        parameters=dict(stored.parameters),
    )


__all__ = ["CacheConfig", "ResponseCache", "cache_config", "cache_key", "hit_response"]

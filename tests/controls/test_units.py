"""Pure units: the token bucket, limits, the bounded client table, the cache key and the LRU."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from modelport.controls import KeyStore, load_keys, parse_limit
from modelport.controls.cache import CacheConfig, ResponseCache, cache_key
from modelport.controls.ratelimit import BucketTable, ClientTableFull, TokenBucket
from modelport.errors import Unauthenticated
from modelport.types import InferInput, InferOutput, InferRequest, InferResponse, RequestedOutput
from modelport.wire import v2_json
from modelport.wire.grpc import convert


def test_parse_limit():
    assert parse_limit("100/minute").rate == pytest.approx(100 / 60) and parse_limit("100/minute").burst == 100
    assert parse_limit("1000/hour").rate == pytest.approx(1000 / 3600)
    limit = parse_limit("10/second;burst=20")
    assert (limit.rate, limit.burst) == (10, 20)
    assert parse_limit("5/10minutes").rate == pytest.approx(5 / 600)
    assert parse_limit("3/s").rate == 3 and parse_limit("7/days").rate == pytest.approx(7 / 86400)


def test_token_bucket_grants_the_burst_then_refills_at_the_rate():
    bucket = TokenBucket(parse_limit("2/second;burst=3"), now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)  # one token refills in 1/2 s
    assert bucket.take(0.25) == pytest.approx(0.25)
    assert bucket.take(0.5) == 0.0
    assert bucket.take(100.0) == 0.0 and bucket.tokens == pytest.approx(2.0)  # never more than the burst


def test_bucket_table_is_bounded_and_drops_only_refilled_buckets():
    table = BucketTable(parse_limit("1/minute"), max_size=2)  # a token a minute, burst 1
    assert table.take("b", 0) == 0 and table.take("a", 10) == 0
    assert table.take("a", 11) > 0  # a is limited
    with pytest.raises(ClientTableFull, match="rate_limit_clients 2"):
        table.take("c", 11)  # full, and nobody has refilled: the newcomer waits
    assert len(table) == 2
    assert table.take("c", 61) == 0  # b has refilled (a not yet): b makes room
    assert len(table) == 2
    assert table.take("a", 61) > 0  # a still limited: never reset by newcomers
    assert table.take("b", 71) == 0 and len(table) == 2  # b comes back once a has refilled (at 70)


def test_key_store_hashes_and_checks_every_key():
    keys = load_keys([{"name": "x", "key": "secret"}, {"name": "y", "sha256": hashlib.sha256(b"other").hexdigest()}])
    assert all(len(k.digest) == 32 for k in keys) and "secret" not in repr(keys)
    store = KeyStore(keys)
    assert store.authenticate({"authorization": "Bearer other"}).name == "y"
    assert store.authenticate({"authorization": "bearer   secret "}).name == "x"
    for headers in ({}, {"authorization": "Basic c2VjcmV0"}, {"authorization": "Bearer nope"}):
        with pytest.raises(Unauthenticated):
            store.authenticate(headers)


def test_key_store_remembers_only_valid_keys(monkeypatch):
    from modelport.controls import auth

    store = KeyStore(load_keys([{"name": "x", "key": "secret"}, {"name": "y", "key": "other"}]))
    hashed = []
    monkeypatch.setattr(auth, "digest", lambda key: hashed.append(key) or hashlib.sha256(key.encode()).digest())
    for _ in range(3):
        assert store.authenticate({"x-api-key": "secret"}).name == "x"
    assert hashed == ["secret"]  # hashed once; then known
    for i in range(50):  # invalid texts are never kept (the table cannot be grown by clients)
        with pytest.raises(Unauthenticated):
            store.authenticate({"x-api-key": f"guess-{i}"})
        with pytest.raises(Unauthenticated):
            store.authenticate({"x-api-key": f"guess-{i}"})
    assert hashed.count("guess-7") == 2
    assert store.authenticate({"authorization": "Bearer other"}).name == "y"
    assert sorted(k.name for k in store._valid.values()) == ["x", "y"]


def _request(array, **kw) -> InferRequest:
    return InferRequest("m", [InferInput("x", list(array.shape), "FP32", array)], **kw)


def test_cache_key_ignores_encoding_and_id_but_not_content():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    base = cache_key(_request(x), "m", "1")
    as_json = v2_json.decode_request(v2_json.dumps({"id": "7", "inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 3], "data": x.ravel().tolist()}]}), "m")
    assert cache_key(as_json, "m", "1") == base
    header = v2_json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 3], "parameters": {"binary_data_size": 24}}],
                            "parameters": {"binary_data_output": True}})
    binary = v2_json.decode_request(header + x.tobytes(), "m", None, len(header))
    assert cache_key(binary, "m", "1") == base
    for raw in (True, False):
        grpc_request = convert.request_from_proto(convert.request_to_proto(_request(x, request_id="9"), raw=raw))
        assert cache_key(grpc_request, "m", "1") == base
    assert cache_key(_request(x), "m", "2") != base
    assert cache_key(_request(x), "n", "1") != base
    assert cache_key(_request(x + 1), "m", "1") != base
    assert cache_key(_request(x.reshape(3, 2)), "m", "1") != base
    assert cache_key(_request(x, parameters={"temperature": 1}), "m", "1") != base
    assert cache_key(_request(x, request_outputs=[RequestedOutput("y")]), "m", "1") != base
    assert cache_key(_request(x, request_outputs=[RequestedOutput("y", {"classification": 2})]), "m", "1") != cache_key(
        _request(x, request_outputs=[RequestedOutput("y")]), "m", "1"
    )
    as_int = InferRequest("m", [InferInput("x", [2, 3], "INT32", x.astype(np.int32))])
    assert cache_key(as_int, "m", "1") != base


def _response(n: int) -> InferResponse:
    out = InferOutput("y", [n], "FP32")
    out.set_data_from_numpy(np.zeros(n, np.float32))
    return InferResponse(None, "m", [out])


def test_lru_bounds_entries_and_bytes_and_expires():
    cache = ResponseCache(CacheConfig(max_entries=2, max_bytes=10_000, ttl=10))
    cache.put(b"a", _response(1), {}, 0)
    cache.put(b"b", _response(1), {}, 0)
    assert cache.get(b"a", 1) is not None  # a is now the most recent
    cache.put(b"c", _response(1), {}, 1)
    assert len(cache) == 2 and cache.get(b"b", 1) is None
    assert cache.get(b"a", 11) is None  # expired
    cache = ResponseCache(CacheConfig(max_entries=100, max_bytes=1000))
    for i in range(10):
        cache.put(bytes([i]), _response(100), {}, 0)  # 400 bytes of tensor each (+ overhead)
    assert cache.bytes <= 1000 and len(cache) == 1
    cache.put(b"huge", _response(10_000), {}, 0)
    assert cache.get(b"huge", 0) is None  # larger than the whole cache: not stored
    cache.clear()
    assert len(cache) == 0 and cache.bytes == 0

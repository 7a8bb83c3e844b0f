"""Smaller holes from the probe: gzip integrity, a strict Inference-Header-Content-Length, and V1
refusing true/false where a numeric model expects numbers (as V2 does)."""

from __future__ import annotations

import gzip
import zlib

import numpy as np
import orjson
import pytest

from modelport.errors import InvalidInput
from modelport.wire.v2_json import parse_header_length

BODY = orjson.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 2.0]}]})


@pytest.mark.parametrize(
    "encoding,body,fragment",
    [
        ("gzip", gzip.compress(BODY)[:-8], "truncated"),  # CRC and size trailer cut off
        ("gzip", gzip.compress(BODY)[:-4], "truncated"),
        ("gzip", gzip.compress(BODY) + b"garbage", "follow the compressed stream"),
        ("gzip", gzip.compress(BODY) + gzip.compress(b"{}"), "follow the compressed stream"),
        ("deflate", zlib.compress(BODY)[:-4], "truncated"),  # adler32 cut off
        ("deflate", zlib.compress(BODY) + b"x", "follow the compressed stream"),
    ],
    ids=["gzip-no-trailer", "gzip-no-size", "gzip-trailing-garbage", "gzip-two-members", "deflate-no-checksum", "deflate-trailing"],
)
async def test_damaged_compressed_bodies_are_400(doors, encoding, body, fragment):
    r = await doors.http.post("/v2/models/sum/infer", content=body, headers={"content-encoding": encoding})
    assert r.status_code == 400 and fragment in r.json()["error"], r.text
    for good in (gzip.compress(BODY), zlib.compress(BODY)):
        name = "gzip" if good[:2] == b"\x1f\x8b" else "deflate"
        assert (await doors.http.post("/v2/models/sum/infer", content=good, headers={"content-encoding": name})).status_code == 200
    await doors.still_serving()


@pytest.mark.parametrize("value", ["+{n}", "{n}_0", "{n} 0", "{n},{n}", "0x10", "-1", "1e2", "١٢", "", "99999999999999999999"])
async def test_header_length_must_be_plain_digits(doors, value):
    # (Spaces around a value are stripped by the HTTP parser, as RFC 9110 says; parse_header_length
    # refuses them too, see below.)
    head = BODY
    raw = head.replace(b'"data":[1.0,2.0]', b'"parameters":{"binary_data_size":8}')
    body = raw + np.array([1, 2], np.float32).tobytes()
    header = value.format(n=len(raw)).encode()
    r = await doors.http.post("/v2/models/sum/infer", content=body, headers=[(b"inference-header-content-length", header)])
    assert r.status_code == 400 and "Inference-Header-Content-Length" in r.json()["error"], (value, r.text)
    await doors.still_serving()


async def test_header_length_sent_twice_is_400(doors):
    raw = BODY.replace(b'"data":[1.0,2.0]', b'"parameters":{"binary_data_size":8}')
    body = raw + np.array([1, 2], np.float32).tobytes()
    n = str(len(raw)).encode()
    for pair in ([n, n], [b"1", n], [n, b"1"]):
        r = await doors.http.post("/v2/models/sum/infer", content=body,
                                  headers=[(b"inference-header-content-length", v) for v in pair])
        assert r.status_code == 400 and "once" in r.json()["error"], r.text
    r = await doors.http.post("/v2/models/sum/infer", content=body, headers={"inference-header-content-length": n.decode()})
    assert r.status_code == 200, r.text


def test_parse_header_length():
    assert parse_header_length([]) is None
    assert parse_header_length([b"0"]) == 0 and parse_header_length(["129"]) == 129
    for bad in (["+129"], ["12_9"], [" 129"], ["１２"], ["1" * 20], ["1", "1"]):
        with pytest.raises(InvalidInput):
            parse_header_length(bad)


async def test_v1_booleans_are_refused_where_numbers_belong(serve):
    pytest.importorskip("sklearn")
    from modelport.examples.iris import IrisClassifier

    server, client = await serve([IrisClassifier("iris")])
    for instances in ([[True, False, True, False]], [[1.0, 2.0, True, 4.0]]):
        r = await client.post("/v1/models/iris:predict", json={"instances": instances})
        assert r.status_code == 400 and ("bool" in r.json()["error"] or "true/false" in r.json()["error"]), r.text
    r = await client.post("/v2/models/iris/infer", json={"inputs": [
        {"name": "input-0", "datatype": "FP32", "shape": [1, 4], "data": [True, False, True, False]}]})
    assert r.status_code == 400  # the V2 rule the V1 one now matches
    r = await client.post("/v1/models/iris:predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]})
    assert r.status_code == 200 and r.json() == {"predictions": [0]}

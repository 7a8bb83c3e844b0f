"""Hostile but parseable tensors through every door (REST JSON, REST binary, gRPC typed, gRPC raw):
each is refused with 400 / INVALID_ARGUMENT and a short message, nothing is logged as an error, and a
normal request through every door succeeds right after."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest

from .conftest import DOORS

I64 = 2**63 - 1
ALL, REST = DOORS, ["json", "binary"]

# id: (tensor, raw bytes for the binary and raw doors, doors, a fragment of the message)
CASES = {
    "65 dims": ({"name": "x", "datatype": "FP32", "shape": [1] * 65, "data": [1.0]}, b"\0" * 4, ALL, "at most 64"),
    "65 dims BYTES": ({"name": "x", "datatype": "BYTES", "shape": [1] * 65, "data": ["a"]}, b"\1\0\0\0a", ALL, "at most 64"),
    "500 dims": ({"name": "x", "datatype": "FP32", "shape": [I64] * 500, "data": []}, b"", ALL, "at most 64"),
    "huge zero-size": ({"name": "x", "datatype": "FP32", "shape": [I64, 0], "data": []}, b"", ALL, "too large"),
    "huge zero-size BYTES": ({"name": "x", "datatype": "BYTES", "shape": [I64, 0], "data": []}, b"", ALL, "too large"),
    "huge zero-size FP16": ({"name": "x", "datatype": "FP16", "shape": [2**62, 0], "data": []}, b"", ALL, "too large"),
    "1,200-digit count": ({"name": "x", "datatype": "FP32", "shape": [I64] * 64, "data": []}, b"", ALL, "too large"),
    "huge count": ({"name": "x", "datatype": "FP32", "shape": [2**62, 4], "data": []}, b"", ALL, "too large"),
    "dim beyond int64": ({"name": "x", "datatype": "FP32", "shape": [2**64 - 1, 0], "data": []}, b"", REST, "int64"),
    "negative dim": ({"name": "x", "datatype": "FP32", "shape": [-1, 4], "data": []}, b"", ALL, "negative"),
    "most negative dim": ({"name": "x", "datatype": "FP32", "shape": [-(2**63), 0], "data": []}, b"", ALL, "negative"),
    "bool dim": ({"name": "x", "datatype": "FP32", "shape": [True], "data": [1.0]}, b"\0" * 4, REST, "non-negative integers"),
}
PARAMS = [pytest.param(case, door, id=f"{case}-{door}") for case, (_, _, doors, _) in CASES.items() for door in doors]


def _clean(message: str) -> None:
    """A refusal names the problem, never Python's insides."""
    for leak in ("Traceback", "Error:", "RecursionError", "ValueError", "digits"):
        assert leak not in message, message
    assert len(message) < 2000, len(message)


def _no_errors_logged(caplog) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [r.getMessage()[:200] for r in bad]


@pytest.mark.parametrize("case,door", PARAMS)
async def test_hostile_tensor_is_400_and_server_serves_on(doors, caplog, case, door):
    tensor, raw, _, fragment = CASES[case]
    status, message = await doors.send(door, "echo", tensor, raw)
    assert status in (400, grpc.StatusCode.INVALID_ARGUMENT), (status, message)
    assert fragment in message, message
    _clean(message)
    _no_errors_logged(caplog)
    await doors.still_serving()


def _nested(depth: int, leaf: bytes) -> bytes:
    return b"[" * depth + leaf + b"]" * depth


@pytest.mark.parametrize("door", REST)
async def test_shape_nested_1000_levels(doors, caplog, door):
    """JSON only (a protobuf shape is flat): 1,000 levels once broke the error message itself."""
    header = b'{"inputs":[{"name":"x","datatype":"FP32","shape":' + _nested(1000, b"1") + b',"data":[1.0]}]}'
    if door == "binary":
        header = header.replace(b',"data":[1.0]', b',"parameters":{"binary_data_size":4}')
        r = await doors.http.post("/v2/models/echo/infer", content=header + b"\0" * 4,
                                  headers={"inference-header-content-length": str(len(header))})
    else:
        r = await doors.http.post("/v2/models/echo/infer", content=header, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "shape must be a list of non-negative integers" in r.json()["error"], r.text
    _clean(r.json()["error"])
    _no_errors_logged(caplog)
    await doors.still_serving()


@pytest.mark.parametrize("depth", [65, 500, 1000])
async def test_bytes_data_nested_deep(doors, caplog, depth):
    """JSON only (binary and gRPC data are flat): no RecursionError, no traceback in the log."""
    body = b'{"inputs":[{"name":"x","datatype":"BYTES","shape":[1],"data":' + _nested(depth, b'"a"') + b"}]}"
    r = await doors.http.post("/v2/models/echo/infer", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert "nested deeper than 64 levels" in r.json()["error"] or "not valid JSON" in r.json()["error"], r.text
    _clean(r.json()["error"])
    _no_errors_logged(caplog)
    await doors.still_serving()


async def test_numeric_data_nested_deep(doors, caplog):
    body = b'{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":' + _nested(500, b"1.0") + b"}]}"
    r = await doors.http.post("/v2/models/echo/infer", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    _clean(r.json()["error"])
    _no_errors_logged(caplog)
    await doors.still_serving()


# -- the probe's 2.6 MB request: refused without walking it, health answered around it --------------------
# Before the fix this request held the event loop for ~43 s. No time bound here (on a shared machine a
# bound cannot tell a stall from a busy neighbour; timings belong in bench/): what the fix made true is
# checked as answers and an order the test controls. Health on a fresh connection answers before the
# request is sent, to a probe sent while it is in flight, and after it; the refusal names the rule without
# quoting the 120,000 dimensions (nothing walked them to build it, as tests/hostile/test_rules.py checks
# for the shape check itself); every door serves right after.
async def _between_health_answers(call, doors) -> object:
    """``call``'s result; health answered (200) before ``call`` starts, alongside it, and after it returns."""
    async with type(doors.http)(base_url=str(doors.http.base_url), timeout=120) as fresh:

        async def live() -> None:
            assert (await fresh.get("/v2/health/live", headers={"connection": "close"})).status_code == 200

        await live()
        result, _ = await asyncio.gather(call, live())
        await live()
    return result


@pytest.mark.parametrize("model", ["echo", "nope"])
@pytest.mark.parametrize("door", ["json", "grpc-raw"])
async def test_huge_shape_request_does_not_stall_the_server(doors, caplog, model, door):
    tensor = {"name": "x", "datatype": "FP32", "shape": [(2**64 - 1) if door == "json" else I64] * 120_000, "data": []}
    status, message = await _between_health_answers(doors.send(door, model, tensor, b""), doors)
    if model == "nope":  # the name is checked before the body is decoded
        assert status in (404, grpc.StatusCode.NOT_FOUND), (status, message)
    else:
        assert status in (400, grpc.StatusCode.INVALID_ARGUMENT) and "at most 64" in message, (status, message)
    _clean(message)
    _no_errors_logged(caplog)
    await doors.still_serving()

"""The shared rules themselves, without a server: shape bounds, client-safe reasons."""

from __future__ import annotations


import pytest

from modelport.errors import InvalidInput, internal_error_message, public_reason
from modelport.types import MAX_DIMS, MAX_ELEMENTS, check_shape


def test_shape_bounds():
    assert check_shape("x", [1] * MAX_DIMS) == [1] * MAX_DIMS  # 64 dims: fine
    assert check_shape("x", (2, 0, 2**58)) == [2, 0, 2**58]  # empty, and allocatable by numpy
    with pytest.raises(InvalidInput, match="too large"):
        check_shape("x", [2**63 - 1, 0])  # empty, but numpy cannot describe it
    assert check_shape("x", [MAX_ELEMENTS]) == [MAX_ELEMENTS]
    for bad, fragment in [
        ([1] * (MAX_DIMS + 1), "at most 64"),
        ([MAX_ELEMENTS + 1], "too large"),
        ([2**32, 2**32], "too large"),
        ([2**63], "int64"),
        ([10**5000], "int64"),  # no 4300-digit str() on the way to the message
        ([-(10**5000)], "negative"),
        ([1.0], "non-negative integers"),
        ([True], "non-negative integers"),
        ("[1]", "non-negative integers"),
        (None, "non-negative integers"),
    ]:
        with pytest.raises(InvalidInput, match=fragment):
            check_shape("x", bad)


def test_shape_check_is_cheap_for_any_length():
    # Cheap by construction, checked as behaviour: the answer never quotes the input it refused.
    with pytest.raises(InvalidInput) as info:
        check_shape("x", [2**64 - 1] * 1_000_000)
    assert len(str(info.value)) < 300, str(info.value)[:300]
    deep: list = [1]
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(InvalidInput) as info:
        check_shape("x", [deep])  # never repr'd: no RecursionError building the message
    assert len(str(info.value)) < 300, str(info.value)[:300]


def test_public_reason_hides_server_paths():
    text = "load failed: Model path '/srv/models/iris/model.joblib' (from '/srv/models/iris/model.joblib') does not exist"
    assert public_reason(text, "/srv/models") == (
        "load failed: Model path 'iris/model.joblib' (from 'iris/model.joblib') does not exist"
    )
    assert public_reason("Cannot read /etc/modelport/secret/settings.json: denied") == (
        "Cannot read .../secret/settings.json: denied"
    )
    # URLs and relative paths are the client's own words: kept.
    assert public_reason("GET https://host/a/b failed for s3://bucket/key and ./x/y") == (
        "GET https://host/a/b failed for s3://bucket/key and ./x/y"
    )


def test_internal_error_message():
    assert internal_error_message("iris", "r-1") == "Model iris failed while serving the request; see the server log (request id r-1)"
    assert internal_error_message(None, None) == "The server failed to serve the request; see the server log"


def test_public_reason_masks_url_credentials():
    text = "load failed for ftp://ftpuser:ftpSECRET@host/m.joblib?X-Amz-Signature=abc&v=1"
    shown = public_reason(text)
    assert "ftpSECRET" not in shown and "abc" not in shown
    assert shown == "load failed for ftp://***@host/m.joblib?X-Amz-Signature=***&v=1"

"""modelport.wire.v1_json: the KServe V1 envelope ({"instances": [...]} in, {"predictions": [...]} out)."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from modelport.errors import InvalidInput
from modelport.wire import v1_json


@pytest.mark.parametrize(
    "doc",
    [
        {"instances": []},
        {"instances": [[1, 2], [3, 4]]},
        {"instances": [{"a": 1, "b": "x"}], "parameters": {"p": 1}},
        {"instances": ["text", None, True]},
        {"inputs": [[1.5]]},
        {"inputs": {"x": [1, 2]}},
        {"instances": [1], "inputs": "ignored when instances is given"},
    ],
)
def test_accepted_envelopes_come_back_as_sent(doc):
    assert v1_json.decode_request(orjson.dumps(doc)) == doc


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b"{", "not valid JSON"),
        (b"", "not valid JSON"),
    ],
)
def test_rejected_envelopes(body, fragment):
    with pytest.raises(InvalidInput) as info:
        v1_json.decode_request(body)
    assert fragment in str(info.value)


def test_request_and_response_round_trip():
    body = v1_json.encode_request([[1, 2], {"a": "é"}])
    assert orjson.loads(body) == {"instances": [[1, 2], {"a": "é"}]}
    assert v1_json.decode_request(body) == {"instances": [[1, 2], {"a": "é"}]}
    result = {"predictions": np.array([[0.5, 1.5]], dtype=np.float32), "n": np.int64(2)}
    assert v1_json.decode_response(v1_json.encode_response(result)) == {"predictions": [[0.5, 1.5]], "n": 2}
    with pytest.raises(InvalidInput, match="Response body is not valid JSON"):
        v1_json.decode_response(b"<html>")


@pytest.mark.parametrize("body", [b"{}", b'{"rev_id": 1097728152}', b'{"data": [1]}', b'{"inputs": 3}', b"[1, 2]", b'"x"', b"null"])
def test_any_json_reaches_the_model_as_sent(body):
    # As in KServe: only an "instances" that is present and not a list is the server's business.
    assert v1_json.decode_request(body) == orjson.loads(body)


@pytest.mark.parametrize("doc", [{"instances": {"a": 1}}, {"instances": "x"}, {"instances": None}])
def test_check_request_refuses_instances_that_is_not_a_list(doc):
    with pytest.raises(InvalidInput, match='"instances" to be a list'):
        v1_json.check_request(doc)
    v1_json.check_request({"rev_id": 1})
    v1_json.check_request([1])

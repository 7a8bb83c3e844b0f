"""KServe V1: ``{"instances": [...]}`` in, ``{"predictions": [...]}`` out.

The model receives the decoded dict as the client sent it; only the envelope is checked here.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput
from .v2_json import dumps, loads


def decode_request(body: bytes) -> dict[str, Any]:
    doc = loads(body)
    if not isinstance(doc, dict):
        raise InvalidInput('V1 request body must be a JSON object with "instances"')
    if "instances" in doc:
        if not isinstance(doc["instances"], list):
            raise InvalidInput('Expected "instances" to be a list')
    elif "inputs" in doc:
        if not isinstance(doc["inputs"], (list, dict)):
            raise InvalidInput('Expected "inputs" to be a list or an object')
    else:
        raise InvalidInput('V1 request needs "instances" (a list) or "inputs"')
    return doc


def encode_response(result: Any) -> bytes:
    return dumps(result)


def encode_request(instances: list) -> bytes:
    return dumps({"instances": instances})


def decode_response(body: bytes) -> Any:
    return loads(body, "Response body")

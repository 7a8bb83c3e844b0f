"""KServe V1: ``{"instances": [...]}`` in, ``{"predictions": [...]}`` out.

The model receives the decoded JSON as the client sent it (``{"rev_id": 1}`` included), as in KServe:
the only envelope rule is KServe's own, that an ``instances`` which is present in what reaches
``predict`` must be a list (:func:`check_request`, applied by the runner after ``preprocess``).
A model that needs ``instances`` says so itself (``raise InvalidInput(...)`` reaches the client as 400).
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput
from .v2_json import dumps, loads


def decode_request(body: bytes) -> Any:
    return loads(body)


def check_request(doc: Any) -> None:
    """KServe's V1 check (kserve.Model.validate): ``instances``, when present, is a list.

    The runner applies it to what reaches ``predict``/``explain`` (after ``preprocess``), as KServe does.
    """
    if isinstance(doc, dict) and "instances" in doc and not isinstance(doc["instances"], list):
        raise InvalidInput('Expected "instances" to be a list')


def encode_response(result: Any) -> bytes:
    return dumps(result)


def encode_request(instances: list) -> bytes:
    return dumps({"instances": instances})


def decode_response(body: bytes) -> Any:
    return loads(body, "Response body")

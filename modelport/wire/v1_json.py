"""KServe V1: ``{"instances": [...]}`` in, ``{"predictions": [...]}`` out.

The model receives the decoded JSON as the client sent it (``{"rev_id": 1}`` included), as in KServe:
the only envelope rule is KServe's own, that an ``instances`` which is present in what reaches
``predict`` must be a list (:func:`check_request`, applied by the runner after ``preprocess``).
A model that needs ``instances`` says so itself (``raise InvalidInput(...)`` reaches the client as 400).
"""

from __future__ import annotations

from typing import Any

from ..errors import InferenceError, InvalidInput
from .jsonable import Unencodable
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
    """The V1 body; Decimal, pandas, sets, bytes, numpy datetimes and scalars are written as
    wire/jsonable.py says, and anything else is a 500 that names the type."""
    try:
        return dumps(result)
    except TypeError as exc:  # orjson.JSONEncodeError; its cause is jsonable's Unencodable
        cause = exc.__cause__ if isinstance(exc.__cause__, Unencodable) else None
        what = cause.type_name if cause is not None else str(exc)
        raise InferenceError(
            f"The model's result holds a value of type {what}, which cannot be sent as JSON; return numbers, "
            "text, lists, dicts, numpy arrays, pandas objects, Decimal, sets or bytes"
        ) from None


def encode_request(instances: list) -> bytes:
    return dumps({"instances": instances})


def decode_response(body: bytes) -> Any:
    return loads(body, "Response body")

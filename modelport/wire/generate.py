"""Triton's generate extension: text-in/text-out JSON for ``/generate`` and ``/generate_stream``.

A request is one JSON object: ``parameters`` (optional) become the request's parameters, ``id`` its
id, and every other field one input tensor named after it (a string → BYTES [1], a bool → BOOL [1],
an integer → INT64 [1], a number → FP64 [1], a list → the same kinds with shape [n]; a datatype the
model declares for that input wins). A response is one flat object: ``model_name``,
``model_version``, ``id`` when set, and each output by name (one element → the value, more → a list;
BYTES as UTF-8 text).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidInput
from ..types import InferInput, InferRequest, InferResponse, to_np_dtype

_RESERVED = ("parameters", "id")


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "BYTES"
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FP64"
    raise InvalidInput(f"Generate fields must be strings, numbers, booleans or lists of them, got {type(value).__name__}")


def request_from_dict(doc: Any, model_name: str, model_version: str | None = None, declared: list[dict] | None = None) -> InferRequest:
    if not isinstance(doc, dict):
        raise InvalidInput("A generate request must be a JSON object")
    parameters = doc.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidInput('"parameters" must be a JSON object')
    types = {d["name"]: d.get("datatype") for d in declared or [] if "name" in d}
    inputs = []
    for name, value in doc.items():
        if name in _RESERVED:
            continue
        values = value if isinstance(value, list) else [value]
        if not values:
            raise InvalidInput(f"Generate field {name!r} is an empty list")
        kinds = {_kind(v) for v in values}
        if kinds == {"INT64", "FP64"}:
            kinds = {"FP64"}
        if len(kinds) != 1:
            raise InvalidInput(f"Generate field {name!r} mixes kinds of values")
        datatype = types.get(name) or kinds.pop()
        if datatype == "BYTES":
            array = np.array([v.encode("utf-8") if isinstance(v, str) else str(v).encode() for v in values], dtype=object)
        else:
            try:
                array = np.array(values, dtype=to_np_dtype(datatype))
            except (TypeError, ValueError):
                raise InvalidInput(f"Generate field {name!r} does not fit datatype {datatype}") from None
        inputs.append(InferInput(name, [len(values)], datatype, array))
    if not inputs:
        raise InvalidInput("A generate request needs at least one input field (e.g. \"text_input\")")
    request_id = doc.get("id")
    return InferRequest(model_name, inputs, request_id=None if request_id is None else str(request_id),
                        parameters=dict(parameters), model_version=model_version)


def _value(array: np.ndarray) -> Any:
    flat = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in array.ravel().tolist()]
    return flat[0] if len(flat) == 1 else flat


def response_to_dict(response: InferResponse) -> dict[str, Any]:
    doc: dict[str, Any] = {"model_name": response.model_name, "model_version": response.model_version or ""}
    if response.id is not None:
        doc["id"] = response.id
    for out in response.outputs:
        doc[out.name] = _value(out.as_numpy())
    return doc


def merge(responses: list[InferResponse]) -> InferResponse:
    """Many streamed responses as one, for ``/generate``: text outputs joined, others the last value."""
    last = responses[-1]
    if len(responses) == 1:
        return last
    joined: dict[str, list[bytes]] = {}
    for response in responses:
        for out in response.outputs:
            array = out.as_numpy()
            if out.datatype == "BYTES" and array.size == 1:
                joined.setdefault(out.name, []).append(array.ravel()[0])
    for out in last.outputs:
        if out.name in joined:
            text = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in joined[out.name])
            out.set_data_from_numpy(np.array([text], dtype=object).reshape(out.as_numpy().shape), binary_data=False)
    return last

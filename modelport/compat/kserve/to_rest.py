"""KServe's ``InferRequest.to_rest`` / ``InferResponse.to_rest``: the REST V2 document as KServe 0.16
builds it, key order and all (code compares these bytes), for scripts that build a body themselves.
modelport's REST door does not use them; its own encoder is :mod:`modelport.wire.v2_json`.

A tensor travels as binary data when it was set with ``set_data_from_numpy(..., binary_data=True)``
(a request's input) or when the response asks so (``use_binary_outputs``, or the requested output's
``binary_data``). FP16 has no JSON form: as JSON it raises InvalidInput, as in KServe.
"""

from __future__ import annotations

from typing import Any

import orjson

from ...errors import InvalidInput
from ...wire.raw import array_to_raw

_SIZE = "binary_data_size"


def _tensor(tensor: Any, binary: bool, model_name: str, kind: str) -> tuple[dict, bytes | None]:
    if tensor._data is None and tensor._array is None:
        raise InvalidInput(f"'data' field is missing for {kind} '{tensor.name}' for model '{model_name}'")
    if tensor.datatype == "FP16" and not binary:
        raise InvalidInput(
            f"Sending FP16 data via JSON is not supported. Please use the binary data format for {kind} {tensor.name}"
        )
    doc: dict[str, Any] = {"name": tensor.name, "shape": tensor.shape, "datatype": tensor.datatype}
    params = {k: v for k, v in tensor.parameters.items() if k != _SIZE}
    raw = None
    if binary:
        raw = bytes(array_to_raw(tensor.as_numpy(), tensor.datatype))
        params[_SIZE] = len(raw)
    if params:
        doc["parameters"] = params
    if raw is None:
        doc["data"] = tensor._json_data() if tensor._data is None else tensor.data
    return doc, raw


def _finish(doc: dict, raws: list[bytes]) -> tuple[dict | bytes, int | None]:
    if not raws:
        return doc, None
    head = orjson.dumps(doc)
    return b"".join([head, *raws]), len(head)


def request_to_rest(request: Any) -> tuple[dict | bytes, int | None]:
    from .flags import generate_uuid

    inputs, raws = [], []
    for tensor in request.inputs:
        doc, raw = _tensor(tensor, tensor._binary is True, request.model_name, "input")
        inputs.append(doc)
        if raw is not None:
            raws.append(raw)
    out: dict[str, Any] = {"id": request.id or generate_uuid(), "model_name": request.model_name, "inputs": inputs}
    if request.request_outputs:
        out["outputs"] = [{"name": o.name, **({"parameters": o.parameters} if o.parameters else {})}
                          for o in request.request_outputs]
    if request.parameters:
        out["parameters"] = request.parameters
    return _finish(out, raws)


def response_to_rest(response: Any) -> tuple[dict | bytes, int | None]:
    outputs, raws = [], []
    wanted = response.requested_outputs
    for item in wanted or response.outputs:
        tensor = response.get_output_by_name(item.name) if wanted else item
        if tensor is None:
            raise InvalidInput(f"Unexpected inference output '{item.name}' for model '{response.model_name}'")
        binary = bool(item.binary_data) if wanted else bool(response.use_binary_outputs)
        doc, raw = _tensor(tensor, binary, response.model_name, "output")
        outputs.append(doc)
        if raw is not None:
            raws.append(raw)
    out: dict[str, Any] = {"id": response.id, "model_name": response.model_name,
                           "model_version": response.model_version, "outputs": outputs}
    if response.parameters:
        out["parameters"] = response.parameters
    return _finish(out, raws)


__all__ = ["request_to_rest", "response_to_rest"]

"""Open Inference Protocol JSON, with the binary tensor data extension.

A body is a JSON document, optionally followed by binary tensor data; the
``Inference-Header-Content-Length`` header gives the JSON part's length. A tensor whose parameters
carry ``binary_data_size`` takes that many bytes from the binary part, in order.

``decode_request``/``encode_response`` are the server's verbs; ``encode_request``/``decode_response``
the client's. Same module, same rules, so the two sides cannot drift.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from ..errors import InvalidInput
from ..types import (
    InferInput,
    InferOutput,
    InferRequest,
    InferResponse,
    RequestedOutput,
    _array_from_json,
    _json_item,
    check_shape,
    to_np_dtype,
)
from .raw import array_from_raw, array_to_raw
from . import jsonable

HEADER_LENGTH = "inference-header-content-length"
# A tensor whose parameters name a shared-memory region carries no data here (Triton's shm extension).
SHARED_MEMORY = "shared_memory_region"
_DUMPS_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def loads(body: bytes | memoryview | str, what: str = "Request body") -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc}") from None


def parse_header_length(values: list[bytes] | list[str]) -> int | None:
    """The Inference-Header-Content-Length header: absent, or exactly one value of plain ASCII digits
    (no sign, underscores, spaces or other scripts' digits, which Python's int() would accept)."""
    if not values:
        return None
    if len(values) > 1:
        raise InvalidInput("Inference-Header-Content-Length must be sent once")
    value = values[0]
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise InvalidInput("Inference-Header-Content-Length must be a non-negative integer of plain digits")
    return int(text)


def _split(body: bytes, header_length: int | None) -> tuple[bytes | memoryview, memoryview | None]:
    if header_length is None:
        return body, None
    if header_length < 0 or header_length > len(body):
        raise InvalidInput(
            f"Inference-Header-Content-Length {header_length} does not fit a body of {len(body)} bytes"
        )
    view = memoryview(body)
    return view[:header_length], view[header_length:]


class _BinaryReader:
    """Hands out consecutive slices of the binary part to the tensors that ask for them."""

    def __init__(self, binary: memoryview | None):
        self.binary = binary
        self.offset = 0

    def take(self, name: str, size: Any) -> memoryview:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInput(f"Tensor {name!r}: binary_data_size must be a non-negative integer")
        if self.binary is None:
            raise InvalidInput(
                f"Tensor {name!r} has binary_data_size but the request has no Inference-Header-Content-Length header"
            )
        end = self.offset + size
        if end > len(self.binary):
            raise InvalidInput(f"Tensor {name!r}: binary_data_size {size} overruns the binary data")
        chunk = self.binary[self.offset : end]
        self.offset = end
        return chunk

    def finish(self) -> None:
        if self.binary is not None and self.offset != len(self.binary):
            raise InvalidInput(
                f"The body has {len(self.binary) - self.offset} bytes of binary data that no tensor claims"
            )


def _parameters(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{where}: \"parameters\" must be an object")
    return value


def _tensor(cls: type, item: Any, index: int, reader: _BinaryReader, kind: str):
    if not isinstance(item, dict):
        raise InvalidInput(f"{kind} {index} must be an object with name, shape, datatype and data")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{kind} {index} needs a \"name\" string")
    datatype = item.get("datatype")
    if not isinstance(datatype, str):
        raise InvalidInput(f"{kind} {name!r} needs a \"datatype\" string")
    if "shape" not in item:
        raise InvalidInput(f"{kind} {name!r} needs a \"shape\"")
    shape = check_shape(name, item["shape"])
    params = item.get("parameters")
    if params is None and "data" in item:  # the common case: JSON data, no parameters
        return cls(name, shape, datatype, _array_from_json(name, datatype, shape, item["data"]), {})
    params = _parameters(params, f"{kind} {name!r}")
    if SHARED_MEMORY in params and ("data" in item or "binary_data_size" in params):
        raise InvalidInput(f"{kind} {name!r} has data and a shared memory region; send one or the other")
    if "binary_data_size" in params:
        params = dict(params)
        chunk = reader.take(name, params.pop("binary_data_size"))
        data = array_from_raw(chunk, datatype, shape, name)
    elif "data" in item:
        data = _array_from_json(name, datatype, shape, item["data"])  # shape checked above
    elif SHARED_MEMORY in params:
        data = None  # in a shared-memory region: read by the server's shm extension (modelport/shm.py)
    else:
        raise InvalidInput(f"{kind} {name!r} needs \"data\" (or binary_data_size in its parameters)")
    return cls(name, shape, datatype, data, params)


def request_from_dict(doc: Any, model_name: str, model_version: str | None = None, binary: memoryview | None = None) -> InferRequest:
    if not isinstance(doc, dict):
        raise InvalidInput("Request body must be a JSON object with \"inputs\"")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list):
        raise InvalidInput("Request needs \"inputs\": a list of tensors")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput("Request \"id\" must be a string")
    reader = _BinaryReader(binary)
    if len(inputs) == 1:  # the usual request: no comprehension (a function object per call on 3.11)
        tensors = [_tensor(InferInput, inputs[0], 0, reader, "Input")]
    else:
        tensors = [_tensor(InferInput, item, i, reader, "Input") for i, item in enumerate(inputs)]
    reader.finish()
    if len(tensors) > 1 and len({t.name for t in tensors}) != len(tensors):
        raise InvalidInput("Input names must be unique")
    outputs = doc.get("outputs")
    requested = None
    if outputs is not None:
        if not isinstance(outputs, list):
            raise InvalidInput("Request \"outputs\" must be a list")
        requested = []
        for i, out in enumerate(outputs):
            if not isinstance(out, dict) or not isinstance(out.get("name"), str):
                raise InvalidInput(f"Requested output {i} needs a \"name\" string")
            requested.append(RequestedOutput(out["name"], dict(_parameters(out.get("parameters"), f"Output {out['name']!r}"))))
    params = doc.get("parameters")
    # model_name, infer_inputs, request_id, raw_inputs, from_grpc, parameters, request_outputs, model_version
    return InferRequest(model_name, tensors, request_id, None, False,
                        dict(_parameters(params, "Request")) if params is not None else {}, requested, model_version)


def decode_request(body: bytes, model_name: str, model_version: str | None = None, header_length: int | None = None) -> InferRequest:
    """A REST V2 infer body (JSON, or JSON + binary tensors) as an InferRequest."""
    head, binary = _split(body, header_length)
    try:
        doc = loads(head)
    except InvalidInput as exc:
        # JSON followed by more (often non-UTF-8) bytes is what a binary body without its header
        # looks like; a plain syntax error gets no such hint.
        if header_length is None and ("after document" in str(exc) or "UTF-8" in str(exc)):
            raise InvalidInput(f"{exc} (a body with binary tensor data needs the Inference-Header-Content-Length header)") from None
        raise
    return request_from_dict(doc, model_name, model_version, binary)


def _wants_binary(tensor: InferOutput, default: bool, use_hint: bool) -> bool:
    flag = tensor.parameters.get("binary_data")
    if flag is None and use_hint:
        flag = tensor._binary
    return default if flag is None else bool(flag)


def _json_data(array: np.ndarray, datatype: str) -> Any:
    if datatype == "BYTES":
        return [_json_item(v) for v in array.ravel()]
    if datatype == "FP16":
        return array.ravel().tolist()
    return array.ravel()  # always C-contiguous (a view when it can be), as orjson needs


def _encode_tensors(tensors: list, default_binary: bool, use_hint: bool) -> tuple[list[dict], list]:
    docs, chunks = [], []
    for t in tensors:
        datatype = t.datatype
        doc: dict[str, Any] = {"name": t.name, "datatype": datatype}
        params = t.parameters
        params = {k: v for k, v in params.items() if k not in ("binary_data", "binary_data_size")} if params else {}
        if SHARED_MEMORY in params:  # its data is in the region: none here
            docs.append({**doc, "shape": list(t.shape), "parameters": params})
            continue
        array = t.as_numpy()
        if datatype != "BYTES":
            # The declared datatype wins (as in the gRPC codec): its bytes are what the peer will read.
            dtype = to_np_dtype(datatype)
            if array.dtype is not dtype:
                array = array.astype(dtype, copy=False)
        doc["shape"] = list(array.shape)
        if _wants_binary(t, default_binary, use_hint):
            raw = array_to_raw(array, datatype)
            params["binary_data_size"] = len(raw)
            chunks.append(raw)
            if params:
                doc["parameters"] = params
        else:
            if params:
                doc["parameters"] = params
            doc["data"] = _json_data(array, datatype)
        docs.append(doc)
    return docs, chunks


def _assemble(doc: dict, chunks: list) -> tuple[bytes, int | None]:
    parts, json_length = _parts(doc, chunks)
    return (parts[0] if len(parts) == 1 else b"".join(parts)), json_length


def _parts(doc: dict, chunks: list) -> tuple[list, int | None]:
    head = orjson.dumps(doc, option=_DUMPS_OPTIONS, default=_default)
    return [head, *chunks], (len(head) if chunks else None)


# Types orjson does not know (Decimal, pandas, sets, bytes, numpy datetimes, ...): see jsonable.py.
_default = jsonable.default


def encode_response(response: InferResponse, binary_outputs: bool = False) -> tuple[bytes, int | None]:
    """The REST body of a response and, if it carries binary tensors, the JSON part's length."""
    parts, json_length = encode_response_parts(response, binary_outputs)
    return (parts[0] if len(parts) == 1 else b"".join(parts)), json_length


def encode_response_parts(response: InferResponse, binary_outputs: bool = False) -> tuple[list, int | None]:
    """``encode_response`` as a list of parts: the JSON, then each binary tensor as a buffer (a
    memoryview of the output array, not a copy) for the transport to write one after the other."""
    doc: dict[str, Any] = {"model_name": response.model_name}
    if response.model_version is not None:
        doc["model_version"] = response.model_version
    if response.id is not None:
        doc["id"] = response.id
    if response.parameters:
        doc["parameters"] = response.parameters
    doc["outputs"], chunks = _encode_tensors(response.outputs, binary_outputs or response.use_binary_outputs, False)
    return _parts(doc, chunks)


def encode_request(request: InferRequest, binary_inputs: bool = False, binary_outputs: bool | None = None) -> tuple[bytes, int | None]:
    """The REST body of a request (client side); inputs go binary when asked or flagged per input."""
    doc: dict[str, Any] = {}
    if request.id is not None:
        doc["id"] = request.id
    params = dict(request.parameters)
    if binary_outputs is not None:
        params["binary_data_output"] = binary_outputs
    if params:
        doc["parameters"] = params
    doc["inputs"], chunks = _encode_tensors(request.inputs, binary_inputs, True)
    if request.request_outputs:
        doc["outputs"] = [
            {"name": o.name, **({"parameters": o.parameters} if o.parameters else {})} for o in request.request_outputs
        ]
    return _assemble(doc, chunks)


def response_from_dict(doc: Any, binary: memoryview | None = None) -> InferResponse:
    if not isinstance(doc, dict) or not isinstance(doc.get("outputs"), list):
        raise InvalidInput("Response must be a JSON object with \"outputs\"")
    reader = _BinaryReader(binary)
    outputs = [_tensor(InferOutput, item, i, reader, "Output") for i, item in enumerate(doc["outputs"])]
    reader.finish()
    return InferResponse(
        response_id=doc.get("id"),
        model_name=doc.get("model_name", ""),
        infer_outputs=outputs,
        model_version=doc.get("model_version"),
        parameters=dict(_parameters(doc.get("parameters"), "Response")),
    )


def decode_response(body: bytes, header_length: int | None = None) -> InferResponse:
    head, binary = _split(body, header_length)
    return response_from_dict(loads(head, "Response body"), binary)


def dumps(value: Any) -> bytes:
    """Any JSON document the server sends (metadata, V1 bodies, errors)."""
    return orjson.dumps(value, option=_DUMPS_OPTIONS, default=_default)

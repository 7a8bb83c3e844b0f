"""modelport.wire.v2_json: the REST V2 codec, JSON and binary tensor extension, both directions."""

from __future__ import annotations

import struct

import numpy as np
import orjson
import pytest

from modelport.errors import InvalidInput
from modelport.types import (
    InferInput,
    InferOutput,
    InferRequest,
    InferResponse,
    RequestedOutput,
    bytes_array,
    to_np_dtype,
)
from modelport.wire import v2_json
from modelport.wire.raw import serialize_bytes_tensor

DATATYPES = [
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]


def _array(datatype: str, shape=(2, 3)) -> np.ndarray:
    n = int(np.prod(shape))
    if datatype == "BYTES":
        return bytes_array([f"s{i}-é" for i in range(n)], shape)
    if datatype == "BOOL":
        return (np.arange(n) % 3 == 0).reshape(shape)
    dtype = to_np_dtype(datatype)
    if dtype.kind == "f":
        return (np.arange(n) / 4 - 1).astype(dtype).reshape(shape)
    info = np.iinfo(dtype)
    values = [int(info.min), int(info.max), 0, 1, int(info.max) - 1, int(info.min) + 1]
    return np.array((values * n)[:n], dtype=dtype).reshape(shape)


def _tensor(cls, name: str, datatype: str, shape=(2, 3), binary: bool | None = None):
    """A tensor holding an array; ``binary`` sets its per-tensor binary_data parameter (None: no override)."""
    params = {} if binary is None else {"binary_data": binary}
    return cls(name, list(shape), datatype, _array(datatype, shape), parameters=params)


def _same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


def _head(body: bytes, header_length: int | None) -> dict:
    return orjson.loads(body if header_length is None else body[:header_length])


# -- requests: encode_request -> decode_request ------------------------------------------------------


@pytest.mark.parametrize("datatype", DATATYPES)
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_request_round_trip_every_datatype(datatype, binary):
    req = InferRequest("m", [_tensor(InferInput, "x", datatype, (2, 3))], request_id="req-1")
    body, header_length = v2_json.encode_request(req, binary_inputs=binary)
    doc = _head(body, header_length)
    if binary:
        assert header_length is not None and header_length < len(body)
        assert "data" not in doc["inputs"][0]
        assert doc["inputs"][0]["parameters"]["binary_data_size"] == len(body) - header_length
    else:
        assert header_length is None
        assert len(doc["inputs"][0]["data"]) == 6  # flat JSON data
    back = v2_json.decode_request(body, "m", "7", header_length)
    assert back == req
    assert back.model_version == "7" and back.id == "req-1"
    _same(back.inputs[0].as_numpy(), req.inputs[0].as_numpy())
    assert back.inputs[0].shape == [2, 3]


def test_request_json_data_may_be_nested_on_the_wire():
    body = orjson.dumps({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]}]})
    x = v2_json.decode_request(body, "m").inputs[0].as_numpy()
    assert x.dtype == np.float32 and x.tolist() == [[1, 2], [3, 4]]


def test_request_mixed_binary_and_json_inputs_keep_their_order():
    inputs = [
        _tensor(InferInput, "a", "FP32", (2,), binary=True),
        _tensor(InferInput, "b", "BYTES", (3,), binary=False),
        _tensor(InferInput, "c", "INT64", (1, 2), binary=True),
        InferInput("d", [2], "BOOL", [True, False]),
        _tensor(InferInput, "e", "BYTES", (2, 1), binary=True),
    ]
    req = InferRequest("m", inputs)
    body, header_length = v2_json.encode_request(req)  # binary where each input asks for it
    doc = _head(body, header_length)
    kinds = ["data" in d for d in doc["inputs"]]
    assert kinds == [False, True, False, True, False]
    sizes = [d.get("parameters", {}).get("binary_data_size") for d in doc["inputs"]]
    assert sum(s for s in sizes if s) == len(body) - header_length
    back = v2_json.decode_request(body, "m", header_length=header_length)
    assert back == req
    assert [t.name for t in back.inputs] == ["a", "b", "c", "d", "e"]
    for t in back.inputs:
        assert "binary_data_size" not in t.parameters


def test_client_set_data_from_numpy_binary_flag_decides_how_an_input_is_sent():
    binary, json_ = InferInput("b", [2], "INT32"), InferInput("j", [2], "INT32")
    binary.set_data_from_numpy(np.array([1, 2], dtype=np.int32))  # binary_data=True is the default
    json_.set_data_from_numpy(np.array([3, 4], dtype=np.int32), binary_data=False)
    req = InferRequest("m", [binary, json_])
    body, header_length = v2_json.encode_request(req)
    doc = _head(body, header_length)
    assert doc["inputs"][0]["parameters"] == {"binary_data_size": 8} and "data" not in doc["inputs"][0]
    assert doc["inputs"][1]["data"] == [3, 4] and "parameters" not in doc["inputs"][1]
    assert v2_json.decode_request(body, "m", header_length=header_length) == req


def test_request_binary_inputs_flag_overridden_per_input():
    inputs = [_tensor(InferInput, "j", "INT32", (2,), binary=False), _tensor(InferInput, "b", "INT32", (2,))]
    body, header_length = v2_json.encode_request(InferRequest("m", inputs), binary_inputs=True)
    doc = _head(body, header_length)
    assert doc["inputs"][0]["data"] == [int(v) for v in _array("INT32", (2,))]
    assert doc["inputs"][1]["parameters"] == {"binary_data_size": 8}


def test_request_outputs_id_and_parameters_round_trip():
    params = {
        "s": "text",
        "i": -3,
        "big": 2**63 - 1,
        "f": 1.25,
        "t": True,
        "no": False,
        "null": None,
        "list": [1, "a", [2.5], {"k": None}],
        "obj": {"nested": {"deep": [True]}},
        "unicode": "ünï",
    }
    outputs = [RequestedOutput("y", {"binary_data": True, "classification": 2}), RequestedOutput("z")]
    x = InferInput("x", [1], "FP32", [1.0], parameters={"content_type": "np"})
    req = InferRequest("m", [x], request_id="abc-123", parameters=params, request_outputs=outputs)
    body, header_length = v2_json.encode_request(req, binary_outputs=True)
    doc = _head(body, header_length)
    assert doc["outputs"] == [{"name": "y", "parameters": {"binary_data": True, "classification": 2}}, {"name": "z"}]
    assert doc["parameters"] == {**params, "binary_data_output": True}
    assert doc["inputs"][0]["parameters"] == {"content_type": "np"}
    back = v2_json.decode_request(body, "m", header_length=header_length)
    assert back.id == "abc-123"
    assert back.parameters == {**params, "binary_data_output": True}
    assert back.use_binary_outputs is True
    assert back.request_outputs == outputs
    assert back.request_outputs[0].binary_data is True and back.request_outputs[1].binary_data is None
    assert back.inputs[0].parameters == {"content_type": "np"}
    # binary_outputs=False is said explicitly; None leaves the request's parameters alone.
    body, _ = v2_json.encode_request(InferRequest("m", [x]), binary_outputs=False)
    assert orjson.loads(body)["parameters"] == {"binary_data_output": False}
    body, _ = v2_json.encode_request(InferRequest("m", [x]))
    assert set(orjson.loads(body)) == {"inputs"}


def test_request_with_no_inputs_and_no_header_length():
    back = v2_json.decode_request(b'{"inputs": []}', "m")
    assert back.inputs == [] and back.id is None and back.parameters == {} and back.request_outputs is None


def test_request_binary_tensor_is_a_view_of_the_body():
    req = InferRequest("m", [_tensor(InferInput, "x", "FP64", (4,), binary=True)])
    body, header_length = v2_json.encode_request(req)
    buffer = bytearray(body)
    x = v2_json.decode_request(buffer, "m", header_length=header_length).inputs[0].as_numpy()
    assert np.shares_memory(x, np.frombuffer(buffer, dtype=np.uint8))


def test_request_empty_tensors_round_trip():
    inputs = [
        _tensor(InferInput, "a", "FP32", (0, 3), binary=True),
        _tensor(InferInput, "b", "BYTES", (0,), binary=False),
    ]
    body, header_length = v2_json.encode_request(InferRequest("m", inputs))
    back = v2_json.decode_request(body, "m", header_length=header_length)
    assert back.inputs[0].as_numpy().shape == (0, 3) and back.inputs[1].as_numpy().shape == (0,)


# -- request decode errors -----------------------------------------------------------------------------


def _err(body, header_length=None, *fragments):
    with pytest.raises(InvalidInput) as info:
        v2_json.decode_request(
            body if isinstance(body, bytes) else orjson.dumps(body), "m", header_length=header_length
        )
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def _input(**overrides):
    item = {"name": "x", "shape": [2], "datatype": "FP32", "data": [1.0, 2.0]}
    item.update(overrides)
    return {k: v for k, v in item.items() if v is not ...}


@pytest.mark.parametrize("body", [b"{", b"not json", b"", b"\xff\xfe", b'{"inputs": [}', b"NaN"])
def test_non_json_body(body):
    _err(body, None, "not valid JSON")


@pytest.mark.parametrize("doc", [[], "inputs", 3, None, True])
def test_non_object_body(doc):
    _err(doc, None, "JSON object")


@pytest.mark.parametrize("doc", [{}, {"inputs": None}, {"inputs": {}}, {"inputs": "x"}, {"id": "a"}])
def test_missing_or_invalid_inputs(doc):
    _err(doc, None, '"inputs"')


def test_input_that_is_not_an_object():
    _err({"inputs": [_input(), 5]}, None, "Input 1 must be an object")


@pytest.mark.parametrize("name", [..., None, "", 3, ["x"]])
def test_input_missing_name(name):
    _err({"inputs": [_input(name=name)]}, None, "Input 0", '"name"')


@pytest.mark.parametrize("datatype", [..., None, 3])
def test_input_missing_datatype(datatype):
    _err({"inputs": [_input(datatype=datatype)]}, None, "'x'", '"datatype"')


def test_input_with_unknown_datatype():
    _err({"inputs": [_input(datatype="FLOAT32")]}, None, "'x'", "Unsupported datatype 'FLOAT32'")


@pytest.mark.parametrize("shape", [..., None, "2", [-1], [2.0], [True, 2], [[2]]])
def test_input_missing_or_bad_shape(shape):
    _err({"inputs": [_input(shape=shape)]}, None, "'x'", "shape")


def test_input_missing_data():
    _err({"inputs": [_input(data=...)]}, None, "'x'", '"data"')


def test_input_data_not_fitting_shape_or_datatype():
    _err({"inputs": [_input(shape=[3])]}, None, "'x'", "elements")
    _err({"inputs": [_input(datatype="INT32")]}, None, "'x'")
    _err({"inputs": [_input(data=["a", "b"])]}, None, "'x'")


def test_null_parameters_are_none_with_or_without_data():
    request = v2_json.decode_request(orjson.dumps({"inputs": [_input(parameters=None)]}), "m")
    assert request.inputs[0].parameters == {} and request.inputs[0].as_numpy().tolist() == [1.0, 2.0]
    _err({"inputs": [_input(parameters=None, data=...)]}, None, "'x'", '"data"')


def test_duplicate_input_names():
    _err({"inputs": [_input(), _input()]}, None, "unique")


@pytest.mark.parametrize("request_id", [1, 1.5, True, ["a"], {"a": 1}])
def test_non_string_id(request_id):
    _err({"id": request_id, "inputs": [_input()]}, None, '"id" must be a string')


@pytest.mark.parametrize("params", [[], "x", 1, True])
def test_bad_parameters_type(params):
    _err({"parameters": params, "inputs": [_input()]}, None, "Request", '"parameters" must be an object')
    _err({"inputs": [_input(parameters=params)]}, None, "'x'", '"parameters" must be an object')
    _err({"inputs": [_input()], "outputs": [{"name": "y", "parameters": params}]}, None, "'y'", '"parameters"')


@pytest.mark.parametrize("outputs", [{}, "y", 1])
def test_bad_requested_outputs(outputs):
    _err({"inputs": [_input()], "outputs": outputs}, None, '"outputs" must be a list')


@pytest.mark.parametrize("output", [{}, {"name": 1}, "y", None])
def test_requested_output_without_name(output):
    _err({"inputs": [_input()], "outputs": [{"name": "ok"}, output]}, None, "Requested output 1", '"name"')


def _binary_body(tensors: list[tuple[dict, bytes]], extra: bytes = b"") -> tuple[bytes, int]:
    head = orjson.dumps({"inputs": [doc for doc, _ in tensors]})
    return head + b"".join(raw for _, raw in tensors) + extra, len(head)


def _fp32(name="x", n=2, size=...):
    raw = np.arange(n, dtype=np.float32).tobytes()
    doc = {
        "name": name,
        "shape": [n],
        "datatype": "FP32",
        "parameters": {"binary_data_size": len(raw) if size is ... else size},
    }
    return doc, raw


def test_binary_data_size_without_header_length():
    body, _ = _binary_body([_fp32()])
    _err(body, None, "Inference-Header-Content-Length")
    head = orjson.dumps({"inputs": [_fp32()[0]]})
    _err(head, None, "'x'", "binary_data_size", "Inference-Header-Content-Length")


@pytest.mark.parametrize("size", [-1, 1.5, "8", True, None])
def test_invalid_binary_data_size(size):
    body, header_length = _binary_body([_fp32(size=size)])
    _err(body, header_length, "'x'", "binary_data_size must be a non-negative integer")


def test_binary_data_size_overrunning_the_body():
    body, header_length = _binary_body([_fp32(size=9)])
    _err(body, header_length, "'x'", "overruns")
    body, header_length = _binary_body([_fp32("a"), _fp32("b")])
    _err(body[:-1], header_length, "'b'", "overruns")


def test_binary_data_size_not_matching_shape():
    body, header_length = _binary_body([_fp32(size=4)], extra=b"\x00" * 4)
    _err(body, header_length, "'x'", "needs 8 bytes")


def test_unclaimed_trailing_bytes():
    body, header_length = _binary_body([_fp32()], extra=b"\x00\x01")
    _err(body, header_length, "2 bytes of binary data that no tensor claims")
    head = orjson.dumps({"inputs": [_input()]})
    _err(head + b"junk", len(head), "4 bytes")


@pytest.mark.parametrize("delta", [1, 100])
def test_header_length_bigger_than_body(delta):
    body, _ = _binary_body([_fp32()])
    _err(body, len(body) + delta, "Inference-Header-Content-Length", "does not fit")


def test_negative_or_wrong_header_length():
    body, header_length = _binary_body([_fp32()])
    _err(body, -1, "does not fit")
    _err(body, header_length - 1, "not valid JSON")
    _err(body, header_length + 1, "not valid JSON")


def test_bytes_binary_tensor_errors():
    good = serialize_bytes_tensor(bytes_array(["a", "b"]))
    doc = {"name": "w", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": len(good)}}
    body, header_length = _binary_body([(doc, good)])
    assert v2_json.decode_request(body, "m", header_length=header_length).inputs[0].as_numpy().tolist() == [b"a", b"b"]
    bad = struct.pack("<I", 10) + b"abc"
    doc = {"name": "w", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": len(bad)}}
    _err(*_binary_body([(doc, bad)]), "'w'", "overruns")


# -- responses: encode_response -> decode_response ---------------------------------------------


@pytest.mark.parametrize("datatype", DATATYPES)
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_response_round_trip_every_datatype(datatype, binary):
    out = _tensor(InferOutput, "y", datatype, (3, 2))
    resp = InferResponse("r-1", "m", [out], model_version="2", parameters={"p": [1, "x"]})
    body, header_length = v2_json.encode_response(resp, binary_outputs=binary)
    assert (header_length is not None) == binary
    doc = _head(body, header_length)
    assert doc["model_name"] == "m" and doc["model_version"] == "2" and doc["id"] == "r-1"
    back = v2_json.decode_response(body, header_length)
    assert back == resp
    assert back.model_version == "2"
    _same(back.outputs[0].as_numpy(), out.as_numpy())


def test_response_extremes_survive_json():
    outputs = [
        InferOutput("u64", [2], "UINT64", np.array([2**64 - 1, 0], dtype=np.uint64)),
        InferOutput("i64", [2], "INT64", np.array([-(2**63), 2**63 - 1], dtype=np.int64)),
        InferOutput("f32", [3], "FP32", np.array([0.1, 1 / 3, 3.4e38], dtype=np.float32)),
        InferOutput("f16", [3], "FP16", np.array([0.1, 65504, -6e-8], dtype=np.float16)),
        InferOutput("f64", [2], "FP64", np.array([0.1, 1e-308])),
    ]
    body, header_length = v2_json.encode_response(InferResponse(None, "m", outputs))
    assert header_length is None
    back = v2_json.decode_response(body)
    for sent, got in zip(outputs, back.outputs):
        _same(got.as_numpy(), sent.as_numpy())


def test_response_minimal_document():
    body, header_length = v2_json.encode_response(InferResponse(None, "m", []))
    assert header_length is None and orjson.loads(body) == {"model_name": "m", "outputs": []}
    back = v2_json.decode_response(body)
    assert back.id is None and back.model_version is None and back.parameters == {}


def test_response_non_contiguous_and_big_endian_outputs_encode():
    grid = np.arange(12, dtype=np.int32).reshape(3, 4)[:, ::2]
    big = np.arange(3, dtype=">f8")
    for binary in (False, True):
        outputs = [InferOutput("g", [3, 2], "INT32"), InferOutput("b", [3], "FP64")]
        outputs[0].set_data_from_numpy(grid, binary_data=False)
        outputs[1].set_data_from_numpy(big, binary_data=False)
        back = v2_json.decode_response(*v2_json.encode_response(InferResponse(None, "m", outputs), binary))
        assert back.outputs[0].as_numpy().tolist() == grid.tolist()
        assert back.outputs[1].as_numpy().tolist() == [0.0, 1.0, 2.0]


def test_binary_response_honours_request_flag_and_per_output_overrides():
    def outputs():
        plain = _tensor(InferOutput, "plain", "FP32", (2,), binary=None)  # no binary_data parameter
        yes = _tensor(InferOutput, "yes", "INT32", (2,), binary=True)
        no = _tensor(InferOutput, "no", "BYTES", (2,), binary=False)
        return [plain, yes, no]

    def kinds(body, header_length):
        return {d["name"]: ("binary" if "data" not in d else "json") for d in _head(body, header_length)["outputs"]}

    # Request-level flag off: only the output that asks for binary goes binary.
    body, header_length = v2_json.encode_response(InferResponse("r", "m", outputs()), binary_outputs=False)
    assert kinds(body, header_length) == {"plain": "json", "yes": "binary", "no": "json"}
    assert v2_json.decode_response(body, header_length) == InferResponse("r", "m", outputs())
    # Request-level flag on: every output is binary except one that says binary_data false.
    body, header_length = v2_json.encode_response(InferResponse("r", "m", outputs()), binary_outputs=True)
    assert kinds(body, header_length) == {"plain": "binary", "yes": "binary", "no": "json"}
    assert v2_json.decode_response(body, header_length) == InferResponse("r", "m", outputs())
    # The response's own use_binary_outputs counts as the request-level flag.
    resp = InferResponse("r", "m", outputs(), use_binary_outputs=True)
    assert kinds(*v2_json.encode_response(resp)) == {"plain": "binary", "yes": "binary", "no": "json"}
    # No output binary at all: plain JSON, no header length.
    only_json = [_tensor(InferOutput, "a", "FP32", (2,), binary=False)]
    assert v2_json.encode_response(InferResponse("r", "m", only_json), binary_outputs=True)[1] is None


def test_binary_response_parameters_are_kept_and_binary_flags_stripped():
    out = _tensor(InferOutput, "y", "FP32", (2,), binary=True)
    out.parameters["content_type"] = "np"
    body, header_length = v2_json.encode_response(InferResponse("r", "m", [out]))
    assert _head(body, header_length)["outputs"][0]["parameters"] == {"content_type": "np", "binary_data_size": 8}
    out = _tensor(InferOutput, "y", "FP32", (2,), binary=False)
    out.parameters["content_type"] = "np"
    body, header_length = v2_json.encode_response(InferResponse("r", "m", [out]))
    assert _head(body, header_length)["outputs"][0]["parameters"] == {"content_type": "np"}
    assert v2_json.decode_response(body).outputs[0].parameters == {"content_type": "np"}


def test_non_utf8_bytes_output_goes_binary_only():
    out = InferOutput("y", [2], "BYTES", bytes_array([b"\xff\x00", b"ok"]))
    body, header_length = v2_json.encode_response(InferResponse("r", "m", [out]), binary_outputs=True)
    assert v2_json.decode_response(body, header_length).outputs[0].as_numpy().tolist() == [b"\xff\x00", b"ok"]
    out.parameters["binary_data"] = False
    with pytest.raises(InvalidInput, match="UTF-8"):
        v2_json.encode_response(InferResponse("r", "m", [out]))


@pytest.mark.parametrize("body", [b"[]", b'{"model_name": "m"}', b'{"outputs": {}}', b"3"])
def test_response_decode_needs_an_object_with_outputs(body):
    with pytest.raises(InvalidInput, match='"outputs"'):
        v2_json.decode_response(body)


def test_response_decode_errors():
    with pytest.raises(InvalidInput, match="Response body is not valid JSON"):
        v2_json.decode_response(b"<html>")
    with pytest.raises(InvalidInput, match="Output 0"):
        v2_json.decode_response(b'{"outputs": [{"shape": [1], "datatype": "FP32", "data": [1]}]}')
    with pytest.raises(InvalidInput, match="'y'"):
        v2_json.decode_response(b'{"outputs": [{"name": "y", "shape": [2], "datatype": "FP32", "data": [1]}]}')
    with pytest.raises(InvalidInput, match="Response"):
        v2_json.decode_response(b'{"outputs": [], "parameters": []}')


def test_response_decode_rejects_unclaimed_and_overrunning_binary_data():
    out = _tensor(InferOutput, "y", "FP32", (2,), binary=True)
    body, header_length = v2_json.encode_response(InferResponse("r", "m", [out]))
    with pytest.raises(InvalidInput, match="no tensor claims"):
        v2_json.decode_response(body + b"\x00", header_length)
    with pytest.raises(InvalidInput, match="overruns"):
        v2_json.decode_response(body[:-1], header_length)
    with pytest.raises(InvalidInput, match="does not fit"):
        v2_json.decode_response(body, len(body) + 1)


def test_dumps_handles_numpy_and_bytes_values():
    doc = {"a": np.float32(1.5), "b": np.arange(3), "c": np.int64(7), "d": b"x", "e": np.bool_(True)}
    assert orjson.loads(v2_json.dumps(doc)) == {"a": 1.5, "b": [0, 1, 2], "c": 7, "d": "x", "e": True}
    with pytest.raises(TypeError):
        v2_json.dumps({"x": object()})
    assert v2_json.loads(b'{"a": 1}') == {"a": 1}
    with pytest.raises(InvalidInput, match="Thing is not valid JSON"):
        v2_json.loads(b"{", "Thing")


def test_plain_syntax_error_gets_no_binary_header_hint():
    with pytest.raises(InvalidInput) as info:
        v2_json.decode_request(b"{broken", "m")
    assert "not valid JSON" in str(info.value) and "Inference-Header-Content-Length" not in str(info.value)

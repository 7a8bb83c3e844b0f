"""rawcodec: ModelInfer's raw tensors as buffers, with the same meaning as protobuf's own parse and serialize."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf.message import DecodeError

from modelport.types import InferOutput, InferResponse
from modelport.wire.grpc import convert
from modelport.wire.grpc import grpc_predict_v2_pb2 as pb
from modelport.wire.grpc.rawcodec import (
    SCAN_FROM,
    RawInferRequest,
    RawInferResponse,
    parse_infer_request,
    scan_infer_request,
    serialize_infer_response,
)

from ..grpc_helpers import infer_request

ARRAYS = [
    ("image", "FP32", np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)),
    ("ids", "INT64", np.arange(-5, 5, dtype=np.int64).reshape(2, 5)),
    ("half", "FP16", np.array([1.5, -2.25], np.float16)),
    ("empty", "FP32", np.zeros((0, 3), np.float32)),
    ("text", "BYTES", np.array([b"a", b"bc"], dtype=object)),
]


def test_raw_request_is_cut_out_without_copies_and_reads_like_protobufs_parse():
    message = infer_request("m", *ARRAYS, id="42", version="3", parameters={"p": 1}, outputs=["image"])
    data = message.SerializeToString()
    parsed = parse_infer_request(data)
    assert isinstance(parsed, RawInferRequest)
    assert all(isinstance(v, memoryview) and v.obj is data for v in parsed.raw_input_contents)  # views, no copies
    assert [bytes(v) for v in parsed.raw_input_contents] == list(message.raw_input_contents)
    assert (parsed.model_name, parsed.model_version, parsed.id) == ("m", "3", "42")
    ours, theirs = convert.request_from_proto(parsed), convert.request_from_proto(pb.ModelInferRequest.FromString(data))
    assert ours.parameters == theirs.parameters == {"p": 1}
    assert [o.name for o in ours.request_outputs] == ["image"]
    for mine, expected in zip(ours.inputs, theirs.inputs):
        assert (mine.name, mine.datatype, mine.shape) == (expected.name, expected.datatype, expected.shape)
        np.testing.assert_array_equal(mine.as_numpy(), expected.as_numpy())


def test_raw_fields_anywhere_in_the_message_are_found_in_order():
    # Protobuf may put fields in any order; repeated raw entries keep theirs.
    head = pb.ModelInferRequest(model_name="m")
    t = head.inputs.add(name="a", datatype="UINT8")
    t.shape.append(2)
    t = head.inputs.add(name="b", datatype="UINT8")
    t.shape.append(1)
    data = pb.ModelInferRequest(raw_input_contents=[b"\x01\x02"]).SerializeToString() + head.SerializeToString()
    data += pb.ModelInferRequest(raw_input_contents=[b"\x03"], id="x").SerializeToString()
    parsed = scan_infer_request(data)
    assert [bytes(v) for v in parsed.raw_input_contents] == [b"\x01\x02", b"\x03"]
    assert (parsed.model_name, parsed.id, [i.name for i in parsed.inputs]) == ("m", "x", ["a", "b"])
    assert not parsed.message.raw_input_contents


def test_small_requests_are_protobufs_to_parse_at_once():
    # Under SCAN_FROM bytes, copying the tensors costs less than scanning for them; the answer is the same.
    message = infer_request("m", ("x", "FP32", np.ones((2, 2), np.float32)), ("t", "BYTES", np.array([b"a"], dtype=object)))
    data = message.SerializeToString()
    assert len(data) < SCAN_FROM
    parsed = parse_infer_request(data)
    assert type(parsed) is pb.ModelInferRequest and parsed == message
    ours, scanned = convert.request_from_proto(parsed), convert.request_from_proto(scan_infer_request(data))
    assert convert.uses_raw(parsed) and convert.uses_raw(scan_infer_request(data))
    for mine, expected in zip(ours.inputs, scanned.inputs, strict=True):
        assert (mine.name, mine.datatype, mine.shape) == (expected.name, expected.datatype, expected.shape)
        np.testing.assert_array_equal(mine.as_numpy(), expected.as_numpy())


def test_requests_without_raw_contents_or_malformed_are_protobufs_to_parse():
    typed = infer_request("m", ("x", "FP32", np.ones((2, 2), np.float32)), raw=False)
    parsed = parse_infer_request(typed.SerializeToString())
    assert type(parsed) is pb.ModelInferRequest and parsed == typed
    data = infer_request("m", ("x", "FP32", np.ones((2, 2), np.float32))).SerializeToString()
    for parse in (parse_infer_request, scan_infer_request):
        with pytest.raises(DecodeError):
            parse(data[:-3])  # the raw entry overruns the message
        with pytest.raises(DecodeError):
            parse(data + b"\xff")  # a truncated varint key


def _response(*arrays) -> InferResponse:
    outputs = []
    for name, datatype, array in arrays:
        out = InferOutput(name, list(array.shape), datatype)
        out.set_data_from_numpy(array, binary_data=False)
        outputs.append(out)
    return InferResponse("7", "m", outputs, parameters={"k": "v"})


@pytest.mark.parametrize("case", ["plain", "non-contiguous", "readonly", "big-endian"])
def test_raw_response_serializes_to_what_protobuf_reads_as_the_plain_message(case):
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    array = {
        "plain": base,
        "non-contiguous": base.T[::2],
        "readonly": np.frombuffer(base.tobytes(), np.float32).reshape(4, 6),
        "big-endian": base.astype(">f4"),
    }[case]
    response = _response(("y", "FP32", array), ("n", "INT32", np.array([1, 2], np.int32)), *ARRAYS[2:])
    plain = convert.response_to_proto(response, raw=True)
    raw = convert.response_to_proto(response, raw=True, buffers=True)
    assert isinstance(raw, RawInferResponse) and not raw.message.raw_output_contents
    data = serialize_infer_response(raw)
    assert pb.ModelInferResponse.FromString(data) == plain == raw.to_message()
    assert raw.ByteSize() == len(data) == plain.ByteSize()
    assert serialize_infer_response(plain) == plain.SerializeToString()
    decoded = convert.response_from_proto(pb.ModelInferResponse.FromString(data))
    np.testing.assert_array_equal(decoded.outputs[0].as_numpy(), np.asarray(array, np.float32))
    assert decoded.outputs[0].as_numpy().dtype == np.dtype("<f4")


def test_typed_answers_ignore_buffers():
    response = _response(("y", "FP32", np.ones(3, np.float32)))
    assert type(convert.response_to_proto(response, raw=False, buffers=True)) is pb.ModelInferResponse

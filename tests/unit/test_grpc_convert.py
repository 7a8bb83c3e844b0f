"""types ⇄ protobuf converters: round trips for every datatype (typed and raw), every parameter
kind, the metadata messages, and each malformed-message error."""

from __future__ import annotations

import numpy as np
import pytest

from modelport.errors import InvalidInput
from modelport.types import InferInput, InferOutput, InferRequest, InferResponse, RequestedOutput, bytes_array
from modelport.wire.grpc import convert
from modelport.wire.grpc import grpc_predict_v2_pb2 as pb

ARRAYS = {
    "BOOL": np.array([[True, False, True]]),
    "UINT8": np.array([[0, 7, 255]], dtype=np.uint8),
    "UINT16": np.array([[0, 7, 65535]], dtype=np.uint16),
    "UINT32": np.array([[0, 7, 2**32 - 1]], dtype=np.uint32),
    "UINT64": np.array([[0, 7, 2**64 - 1]], dtype=np.uint64),
    "INT8": np.array([[-128, 0, 127]], dtype=np.int8),
    "INT16": np.array([[-32768, 0, 32767]], dtype=np.int16),
    "INT32": np.array([[-(2**31), 0, 2**31 - 1]], dtype=np.int32),
    "INT64": np.array([[-(2**63), 0, 2**63 - 1]], dtype=np.int64),
    "FP16": np.array([[0.5, -1.25, 65504.0]], dtype=np.float16),
    "FP32": np.array([[0.5, -1.25, 3.4e38]], dtype=np.float32),
    "FP64": np.array([[0.1, -1e300, np.inf]], dtype=np.float64),
    "BYTES": bytes_array([b"a", b"", "é".encode()], [1, 3]),
}
TYPED = [dt for dt in ARRAYS if dt not in convert.RAW_ONLY]


def _request(datatype: str) -> InferRequest:
    return InferRequest(
        model_name="m",
        infer_inputs=[
            InferInput("x", [1, 3], datatype, ARRAYS[datatype]),
            InferInput("y", [2], "INT32", np.array([1, 2], np.int32)),
        ],
        request_id="r-1",
        parameters={"flag": True},
        request_outputs=[RequestedOutput("out", {"class_count": 3})],
        model_version="2",
    )


def _assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a, b)


# -- round trips ----------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
@pytest.mark.parametrize("datatype", list(ARRAYS))
def test_request_round_trip(datatype: str, raw: bool) -> None:
    request = _request(datatype)
    msg = pb.ModelInferRequest.FromString(convert.request_to_proto(request, raw=raw).SerializeToString())
    # FP16 has no typed field, so it forces the whole message raw.
    assert bool(msg.raw_input_contents) == (raw or datatype in convert.RAW_ONLY)
    back = convert.request_from_proto(msg)
    assert back == request
    assert (back.model_version, back.parameters, back.from_grpc) == ("2", {"flag": True}, True)
    assert back.request_outputs == [RequestedOutput("out", {"class_count": 3})]
    _assert_same(back.inputs[0].as_numpy(), ARRAYS[datatype])


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
@pytest.mark.parametrize("datatype", list(ARRAYS))
def test_response_round_trip(datatype: str, raw: bool) -> None:
    out = InferOutput("out", [1, 3], datatype, ARRAYS[datatype], {"note": "n"})
    response = InferResponse("r-1", "m", [out], model_version="2", parameters={"took_ms": 1.5})
    msg = pb.ModelInferResponse.FromString(convert.response_to_proto(response, raw=raw).SerializeToString())
    assert bool(msg.raw_output_contents) == (raw or datatype in convert.RAW_ONLY)
    back = convert.response_from_proto(msg)
    assert back == response
    assert back.model_version == "2" and back.outputs[0].parameters == {"note": "n"}
    _assert_same(back.outputs[0].as_numpy(), ARRAYS[datatype])


@pytest.mark.parametrize("datatype", TYPED)
def test_typed_contents_use_the_datatypes_field(datatype: str) -> None:
    msg = convert.request_to_proto(_request(datatype), raw=False)
    fields = [f.name for f, _ in msg.inputs[0].contents.ListFields()]
    assert fields == [convert.CONTENTS_FIELD[datatype]]


def test_empty_request_and_optional_fields() -> None:
    msg = pb.ModelInferRequest(model_name="m")
    request = convert.request_from_proto(msg)
    assert (request.inputs, request.id, request.model_version, request.request_outputs) == ([], None, None, None)
    assert convert.uses_raw(msg)


def test_rest_only_flags_do_not_travel() -> None:
    tensor = InferInput("x", [2], "FP32")
    tensor.set_data_from_numpy(np.array([1, 2], np.float32))  # sets binary_data, a REST flag
    msg = convert.request_to_proto(InferRequest("m", [tensor]))
    assert dict(msg.inputs[0].parameters) == {}


def test_declared_datatype_wins_over_the_arrays_dtype() -> None:
    out = InferOutput("o", [2], "FP32", np.array([1.5, 2.5]))  # float64 array declared FP32
    back = convert.response_from_proto(convert.response_to_proto(InferResponse(None, "m", [out]), raw=True))
    _assert_same(back.outputs[0].as_numpy(), np.array([1.5, 2.5], np.float32))


def test_raw_inputs_are_views_not_lists() -> None:
    msg = convert.request_to_proto(_request("FP32"), raw=True)
    array = convert.request_from_proto(msg).inputs[0].as_numpy()
    assert not array.flags.owndata  # np.frombuffer over the message's bytes


# -- parameters -----------------------------------------------------------------------------------
PARAMETERS = {
    "b": True,
    "i": -5,
    "big": 2**63 - 1,
    "u": 2**64 - 1,
    "f": 0.25,
    "s": "text",
    "np_f": np.float32(0.5),
    "np_i": np.int64(3),
    "np_b": np.bool_(False),
}


def test_parameters_round_trip_every_kind() -> None:
    msg = pb.ModelInferRequest()
    convert.parameters_to_proto(PARAMETERS, msg.parameters)
    kinds = {k: p.WhichOneof("parameter_choice") for k, p in msg.parameters.items()}
    assert kinds == {
        "b": "bool_param",
        "i": "int64_param",
        "big": "int64_param",
        "u": "uint64_param",
        "f": "double_param",
        "s": "string_param",
        "np_f": "double_param",
        "np_i": "int64_param",
        "np_b": "bool_param",
    }
    back = convert.parameters_from_proto(pb.ModelInferRequest.FromString(msg.SerializeToString()).parameters)
    assert back == {k: (v.item() if isinstance(v, np.generic) else v) for k, v in PARAMETERS.items()}
    assert type(back["b"]) is bool and type(back["i"]) is int and type(back["f"]) is float


def test_repository_parameters_read_bytes() -> None:
    msg = pb.RepositoryModelLoadRequest(model_name="m")
    msg.parameters["file:1/model.onnx"].bytes_param = b"\x00\x01"
    msg.parameters["config"].string_param = "{}"
    assert convert.parameters_from_proto(msg.parameters) == {"file:1/model.onnx": b"\x00\x01", "config": "{}"}


def test_unset_parameter_reads_none() -> None:
    msg = pb.ModelInferRequest()
    msg.parameters["empty"].SetInParent()
    assert convert.parameters_from_proto(msg.parameters) == {"empty": None}


@pytest.mark.parametrize("value", [{"a": 1}, [1], None, b"x", 2**64, -(2**63) - 1])
def test_unsendable_parameter(value) -> None:
    with pytest.raises(InvalidInput, match="Parameter 'p'"):
        convert.parameters_to_proto({"p": value}, pb.ModelInferRequest().parameters)


# -- metadata -------------------------------------------------------------------------------------
def test_metadata_round_trips() -> None:
    server = {"name": "modelport", "version": "1.0", "extensions": ["binary_tensor_data"]}
    assert convert.server_metadata_from_proto(convert.server_metadata_to_proto(server)) == server
    model = {
        "name": "m",
        "versions": ["1", "2"],
        "platform": "python",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}],
        "outputs": [{"name": "y", "datatype": "INT64", "shape": [-1]}],
    }
    assert convert.model_metadata_from_proto(convert.model_metadata_to_proto(model)) == model
    # Keys the proto has no field for are dropped, missing ones default.
    sparse = convert.model_metadata_to_proto({"name": "m", "inputs": [{"name": "x", "parameters": {"a": 1}}]})
    assert convert.model_metadata_from_proto(sparse)["inputs"] == [{"name": "x", "datatype": "", "shape": []}]
    index = [
        {"name": "a", "state": "READY", "reason": ""},
        {"name": "b", "version": "3", "state": "FAILED", "reason": "boom"},
    ]
    assert convert.repository_index_from_proto(convert.repository_index_to_proto(index)) == index


# -- malformed messages ---------------------------------------------------------------------------
def _raw_request(*tensors: tuple[str, str, list[int]], raw: list[bytes]) -> pb.ModelInferRequest:
    msg = pb.ModelInferRequest(model_name="m", raw_input_contents=raw)
    for name, datatype, shape in tensors:
        msg.inputs.add(name=name, datatype=datatype, shape=shape)
    return msg


def test_raw_count_must_match_inputs() -> None:
    msg = _raw_request(("a", "FP32", [1]), ("b", "FP32", [1]), raw=[b"\0" * 4])
    with pytest.raises(InvalidInput, match="raw_input_contents has 1 entries for 2 inputs"):
        convert.request_from_proto(msg)


def test_raw_size_must_match_shape() -> None:
    msg = _raw_request(("a", "FP32", [2, 2]), raw=[b"\0" * 12])
    with pytest.raises(InvalidInput, match=r"'a': shape \[2, 2\] of FP32 needs 16 bytes, but the binary data has 12"):
        convert.request_from_proto(msg)


def test_raw_bytes_count_must_match_shape() -> None:
    msg = _raw_request(("s", "BYTES", [2]), raw=[b"\x01\x00\x00\x00a"])
    with pytest.raises(InvalidInput, match="needs 2 elements"):
        convert.request_from_proto(msg)


def test_raw_and_typed_contents_do_not_mix() -> None:
    msg = _raw_request(("a", "INT32", [1]), raw=[b"\0" * 4])
    msg.inputs[0].contents.int_contents.append(1)
    with pytest.raises(InvalidInput, match="use one or the other"):
        convert.request_from_proto(msg)


@pytest.mark.parametrize(
    "datatype,field,value",
    [
        ("FP32", "int_contents", 1),
        ("INT64", "int_contents", 1),
        ("BOOL", "uint_contents", 1),
        ("BYTES", "fp32_contents", 1.0),
    ],
)
def test_contents_in_the_wrong_field(datatype: str, field: str, value) -> None:
    msg = pb.ModelInferRequest(model_name="m")
    tensor = msg.inputs.add(name="a", datatype=datatype, shape=[1])
    getattr(tensor.contents, field).append(value)
    with pytest.raises(
        InvalidInput,
        match=rf"'a': {datatype} data belongs in contents\.{convert.CONTENTS_FIELD[datatype]}, not {field}",
    ):
        convert.request_from_proto(msg)


def test_fp16_cannot_be_typed() -> None:
    msg = pb.ModelInferRequest(model_name="m")
    msg.inputs.add(name="h", datatype="FP16", shape=[1]).contents.fp32_contents.append(1.0)
    with pytest.raises(InvalidInput, match="FP16 data has no typed field; send it in raw contents"):
        convert.request_from_proto(msg)


def test_shape_must_match_typed_length() -> None:
    msg = pb.ModelInferRequest(model_name="m")
    msg.inputs.add(name="a", datatype="FP32", shape=[2, 2]).contents.fp32_contents.extend([1.0, 2.0, 3.0])
    with pytest.raises(InvalidInput, match=r"shape \[2, 2\] needs 4 elements, but contents.fp32_contents has 3"):
        convert.request_from_proto(msg)


def test_missing_data_is_a_length_mismatch() -> None:
    msg = pb.ModelInferRequest(model_name="m")
    msg.inputs.add(name="a", datatype="INT32", shape=[3])
    with pytest.raises(InvalidInput, match="needs 3 elements, but contents.int_contents has 0"):
        convert.request_from_proto(msg)


def test_narrow_integers_are_range_checked() -> None:
    msg = pb.ModelInferRequest(model_name="m")
    msg.inputs.add(name="a", datatype="INT8", shape=[1]).contents.int_contents.append(300)
    with pytest.raises(InvalidInput, match="out of range for datatype INT8"):
        convert.request_from_proto(msg)


@pytest.mark.parametrize("raw", [True, False])
def test_unknown_datatype(raw: bool) -> None:
    msg = _raw_request(("a", "COMPLEX64", [1]), raw=[b"\0" * 8] if raw else [])
    with pytest.raises(InvalidInput, match="Unsupported datatype 'COMPLEX64'"):
        convert.request_from_proto(msg)


def test_input_needs_a_name_and_unique_names() -> None:
    with pytest.raises(InvalidInput, match="Input 0 needs a name"):
        convert.request_from_proto(_raw_request(("", "FP32", [1]), raw=[b"\0" * 4]))
    with pytest.raises(InvalidInput, match="Input names must be unique"):
        convert.request_from_proto(_raw_request(("a", "FP32", [1]), ("a", "FP32", [1]), raw=[b"\0" * 4] * 2))


def test_negative_dimension_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="shape dimension -1 is negative"):
        convert.request_from_proto(_raw_request(("a", "FP32", [-1]), raw=[b""]))


def test_output_count_must_match_raw_on_the_client_side() -> None:
    msg = pb.ModelInferResponse(model_name="m", raw_output_contents=[b"", b""])
    msg.outputs.add(name="o", datatype="FP32", shape=[0])
    with pytest.raises(InvalidInput, match="raw_output_contents has 2 entries for 1 outputs"):
        convert.response_from_proto(msg)


# -- the committed stubs ----------------------------------------------------------------------------
def test_committed_stubs_match_the_proto(tmp_path) -> None:
    """generate.sh on the committed .proto reproduces the committed stubs: no hand edits, no drift."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("grpc_tools")
    source = Path(convert.__file__).parent
    for name in ("grpc_predict_v2.proto", "model_repository.proto", "generate.sh"):
        shutil.copy(source / name, tmp_path / name)
    subprocess.run(
        ["sh", str(tmp_path / "generate.sh")],
        check=True,
        capture_output=True,
        env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
    )
    stubs = [f"{proto}{suffix}" for proto in ("grpc_predict_v2", "model_repository") for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")]
    for name in stubs:
        assert (tmp_path / name).read_text() == (source / name).read_text(), f"{name} is stale: run generate.sh"


@pytest.mark.parametrize("raw,shape", [(True, [0]), (False, [0, 3])], ids=["raw", "typed"])
@pytest.mark.parametrize("datatype", ["FP32", "INT8", "BYTES", "BOOL"])
def test_empty_tensors_round_trip(datatype: str, raw: bool, shape: list[int]) -> None:
    array = np.empty(shape, dtype=object if datatype == "BYTES" else ARRAYS[datatype].dtype)
    request = InferRequest("m", [InferInput("e", shape, datatype, array)])
    back = convert.request_from_proto(convert.request_to_proto(request, raw=raw))
    _assert_same(back.inputs[0].as_numpy(), array)


@pytest.mark.parametrize("datatype, field, dtype", [("FP32", "fp32_contents", np.float32), ("FP64", "fp64_contents", np.float64)])
@pytest.mark.parametrize("count", [1, 4, 150_528])
def test_typed_float_contents_decode_exactly_from_their_packed_bytes(datatype, field, dtype, count):
    rng = np.random.default_rng(count)
    values = rng.standard_normal(count).astype(dtype)
    values[:3] = [np.nan, np.inf, -0.0][: min(3, count)]
    msg = pb.ModelInferRequest(model_name="m")
    tensor = msg.inputs.add(name="x", datatype=datatype, shape=[count])
    getattr(tensor.contents, field).extend(values.tolist())
    array = convert.request_from_proto(msg).inputs[0].as_numpy()
    assert array.dtype == dtype and array.shape == (count,)
    np.testing.assert_array_equal(array, values)
    assert np.signbit(array).tolist() == np.signbit(values).tolist()
    assert array.flags.writeable, "a model may still change its input in place"


def test_empty_typed_float_contents():
    msg = pb.ModelInferRequest(model_name="m")
    msg.inputs.add(name="x", datatype="FP32", shape=[0, 4])
    assert convert.request_from_proto(msg).inputs[0].as_numpy().shape == (0, 4)

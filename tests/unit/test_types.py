"""modelport.types: datatypes, JSON data -> arrays, tensors and the request/response messages."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from modelport.errors import InvalidInput
from modelport.types import (
    DATATYPES,
    InferInput,
    InferOutput,
    InferRequest,
    InferResponse,
    RequestedOutput,
    array_from_json,
    bytes_array,
    check_shape,
    from_np_dtype,
    to_np_dtype,
)

NUMERIC = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}
INTEGER = [d for d in NUMERIC if d.startswith(("INT", "UINT"))]
UNSIGNED = [d for d in INTEGER if d.startswith("UINT")]
FLOAT = ["FP16", "FP32", "FP64"]
NAME = "my_input"


@contextlib.contextmanager
def rejected(*fragments: str, name: str = NAME):
    """Expect InvalidInput whose message names the input and contains every fragment."""
    with pytest.raises(InvalidInput) as info:
        yield info
    message = str(info.value)
    assert repr(name) in message, message
    for fragment in fragments:
        assert fragment in message, message


# -- datatypes <-> numpy ------------------------------------------------------------------------


@pytest.mark.parametrize("datatype, np_type", sorted(NUMERIC.items()))
def test_numeric_datatype_maps_both_ways(datatype, np_type):
    assert to_np_dtype(datatype) == np.dtype(np_type)
    assert from_np_dtype(np.dtype(np_type)) == datatype
    assert from_np_dtype(np_type) == datatype  # a scalar type works as well as a dtype


def test_bytes_datatype_maps_to_object_and_back_from_every_string_kind():
    assert to_np_dtype("BYTES") == np.dtype(object)
    for dtype in (np.dtype(object), np.dtype("U5"), np.dtype("S5"), np.dtype(str), np.dtype(bytes)):
        assert from_np_dtype(dtype) == "BYTES"


def test_every_listed_datatype_is_supported():
    # BF16 has no numpy type, so it is not listed (and is refused, see below).
    assert set(DATATYPES) == set(NUMERIC) | {"BYTES"}
    for datatype in DATATYPES:
        to_np_dtype(datatype)


@pytest.mark.parametrize("datatype", ["FLOAT32", "fp32", "", "BF16", "STRING"])
def test_unknown_datatype_is_rejected_naming_it(datatype):
    with pytest.raises(InvalidInput, match=f"Unsupported datatype {datatype!r}") as info:
        to_np_dtype(datatype)
    # The list of what is accepted does not advertise a datatype that is refused.
    assert "BF16" not in str(info.value).split("expected")[1]


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, "datetime64[s]", "timedelta64[s]", np.void])
def test_numpy_dtype_without_a_datatype_is_rejected(dtype):
    with pytest.raises(InvalidInput, match="has no Open Inference Protocol datatype"):
        from_np_dtype(np.dtype(dtype))


@pytest.mark.parametrize("datatype", ["UINT16", "INT32", "INT64", "FP16", "FP32", "FP64"])
def test_non_native_byte_order_maps_to_the_same_datatype(datatype):
    swapped = to_np_dtype(datatype).newbyteorder("S")
    assert from_np_dtype(swapped) == datatype


# -- array_from_json ----------------------------------------------------------------------------


@pytest.mark.parametrize("datatype", sorted(NUMERIC))
def test_flat_json_data_becomes_array_of_shape_and_dtype(datatype):
    data = [True, False, True, True, False, False] if datatype == "BOOL" else [0, 1, 2, 3, 4, 5]
    arr = array_from_json(NAME, datatype, [2, 3], data)
    assert arr.dtype == to_np_dtype(datatype)
    assert arr.shape == (2, 3)
    assert arr.ravel().tolist() == data


@pytest.mark.parametrize("datatype", sorted(NUMERIC))
def test_nested_json_data_becomes_array_of_shape(datatype):
    value = True if datatype == "BOOL" else 7
    nested = [[[value], [value]], [[value], [value]], [[value], [value]]]
    arr = array_from_json(NAME, datatype, [3, 2, 1], nested)
    assert arr.shape == (3, 2, 1)
    assert arr.dtype == to_np_dtype(datatype)
    # Nested data is read in row-major order, whatever the nesting: [2, 2] data for shape [4] is fine.
    assert array_from_json(NAME, "INT32", [4], [[1, 2], [3, 4]]).tolist() == [1, 2, 3, 4]
    assert array_from_json(NAME, "INT32", [2, 2], [1, 2, 3, 4]).tolist() == [[1, 2], [3, 4]]


def test_bytes_json_data_flat_and_nested():
    arr = array_from_json(NAME, "BYTES", [2, 2], [["a", "bb"], ["", "é"]])
    assert arr.dtype == object and arr.shape == (2, 2)
    assert arr.tolist() == [[b"a", b"bb"], [b"", "é".encode()]]
    assert all(type(v) is bytes for v in arr.ravel())
    assert array_from_json(NAME, "BYTES", [3], ["x", "y", "z"]).tolist() == [b"x", b"y", b"z"]


def test_scalar_and_empty_json_data():
    assert array_from_json(NAME, "INT32", [], 5).tolist() == 5
    assert array_from_json(NAME, "FP32", [1], 2.5).tolist() == [2.5]
    for datatype in list(NUMERIC) + ["BYTES"]:
        arr = array_from_json(NAME, datatype, [0, 3], [])
        assert arr.shape == (0, 3) and arr.dtype == to_np_dtype(datatype)


def test_ints_are_accepted_by_float_tensors_and_keep_their_value():
    arr = array_from_json(NAME, "FP32", [3], [1, 2.5, -3])
    assert arr.dtype == np.float32 and arr.tolist() == [1.0, 2.5, -3.0]


def test_integer_extremes_are_accepted():
    for datatype in INTEGER:
        info = np.iinfo(to_np_dtype(datatype))
        lo, hi = int(info.min), int(info.max)
        arr = array_from_json(NAME, datatype, [3], [lo, 0, hi])
        assert arr.tolist() == [lo, 0, hi], datatype
        assert arr.dtype == to_np_dtype(datatype)
    # Values past INT64's range need numpy's uint64 (JSON mixes them with small ones freely).
    assert array_from_json(NAME, "UINT64", [2], [2**64 - 1, 0]).tolist() == [2**64 - 1, 0]
    assert array_from_json(NAME, "UINT64", [2], [[2**63], [5]]).tolist() == [2**63, 5]


@pytest.mark.parametrize(
    "shape, data",
    [
        ([3], [1, 2]),
        ([2], [1, 2, 3]),
        ([2, 2], [[1, 2], [3, 4], [5, 6]]),
        ([0], [1]),
        ([], [1, 2]),
        ([1], []),
    ],
)
def test_element_count_must_match_shape(shape, data):
    for datatype in ("INT32", "FP32", "BYTES"):
        values = (
            [[str(v) for v in row] if isinstance(row, list) else str(row) for row in data]
            if datatype == "BYTES"
            else data
        )
        with rejected("elements"):
            array_from_json(NAME, datatype, shape, values)


@pytest.mark.parametrize(
    "datatype, data, shape",
    [
        ("INT32", [[1, 2], [3]], [3]),
        ("FP32", [[1.0], [2.0, 3.0]], [3]),
        ("FP32", [1.0, [2.0]], [2]),
        ("BOOL", [[True], [False, True]], [3]),
        ("BYTES", [["a", "b"], ["c"]], [3]),
        ("BYTES", [["a", "b", "c"], ["d"]], [2, 2]),
        ("BYTES", ["a", ["b"]], [2]),
        ("BYTES", [["a"], "b"], [2]),
        ("BYTES", [[["a"], ["b"]], [["c", "d"]]], [4]),
    ],
)
def test_ragged_lists_are_rejected(datatype, data, shape):
    with rejected():
        array_from_json(NAME, datatype, shape, data)


@pytest.mark.parametrize("datatype", [d for d in NUMERIC])
@pytest.mark.parametrize("data", [["1", "2"], ["a", 2], [1, "2"], ["", ""]])
def test_strings_in_numeric_tensors_are_rejected(datatype, data):
    with rejected():
        array_from_json(NAME, datatype, [2], data)


@pytest.mark.parametrize("datatype", INTEGER)
@pytest.mark.parametrize("data", [[1.5, 2.0], [1.0, 2.0], [1, 2.5], [0.0, 0.0]])
def test_floats_into_integer_tensors_are_rejected_not_truncated(datatype, data):
    with rejected():
        array_from_json(NAME, datatype, [2], data)


@pytest.mark.parametrize(
    "datatype, value",
    [
        ("UINT8", 300),
        ("UINT8", 256),
        ("INT8", 128),
        ("INT8", -129),
        ("UINT16", 65536),
        ("INT16", -32769),
        ("UINT32", 2**32),
        ("INT32", 2**31),
        ("INT64", 2**63),
        ("INT64", -(2**63) - 1),
        ("UINT64", 2**64),
        ("INT64", 2**70),
    ]
    + [(d, -1) for d in UNSIGNED],
)
def test_ints_out_of_range_are_rejected(datatype, value):
    with rejected(f"out of range for datatype {datatype}"):
        array_from_json(NAME, datatype, [2], [value, 1])
    with rejected():
        array_from_json(NAME, datatype, [1], [value])


@pytest.mark.parametrize(
    "datatype, value", [("FP16", 70000), ("FP16", 1e10), ("FP16", -1e6), ("FP32", 1e300), ("FP32", -1e39)]
)
def test_floats_out_of_range_are_rejected_not_turned_into_infinity(datatype, value):
    with rejected("out of range"):
        array_from_json(NAME, datatype, [2], [1.0, value])


def test_float_range_check_leaves_non_finite_values_given_by_python_alone():
    arr = array_from_json(NAME, "FP32", [3], [float("nan"), float("inf"), 1.0])
    assert np.isnan(arr[0]) and np.isinf(arr[1]) and arr[2] == 1.0
    assert array_from_json(NAME, "FP16", [1], [65504.0]).tolist() == [65504.0]


def test_bools_and_ints_do_not_mix():
    # BOOL takes JSON true/false only ...
    for data in ([1, 0], [True, 0], [0.0, 1.0], ["true", "false"]):
        with rejected():
            array_from_json(NAME, "BOOL", [2], data)
    # ... and numeric tensors do not take true/false.
    for datatype in INTEGER + FLOAT:
        with rejected():
            array_from_json(NAME, datatype, [2], [True, False])
        with rejected():
            array_from_json(NAME, datatype, [2], [True, 3])
    assert array_from_json(NAME, "BOOL", [2], [True, False]).tolist() == [True, False]


@pytest.mark.parametrize("data", [[1, 2], [None], [{"a": 1}], [True], [1.5], ["a", 1]])
def test_bytes_tensors_take_only_strings(data):
    with rejected():
        array_from_json(NAME, "BYTES", [len(data)], data)


@pytest.mark.parametrize("data", [None, {"a": 1}, [None, None], [[1, 2], None]])
def test_data_that_is_not_numbers_is_rejected(data):
    with rejected():
        array_from_json(NAME, "FP32", [2], data)


def test_unknown_datatype_in_data_names_the_input():
    with rejected("Unsupported datatype 'FLOAT'"):
        array_from_json(NAME, "FLOAT", [1], [1.0])
    with rejected():
        array_from_json(NAME, "BF16", [1], [1.0])


@pytest.mark.parametrize("shape", [[-1], [2, -1], [1.5], ["2"], [True], [2, False], "2", 2, None, [None], {"a": 1}])
def test_bad_shapes_are_rejected(shape):
    with rejected("shape"):
        check_shape(NAME, shape)
    with rejected("shape"):
        array_from_json(NAME, "FP32", shape, [1.0, 2.0])


def test_check_shape_accepts_lists_and_tuples_of_non_negative_ints():
    assert check_shape(NAME, [0, 3]) == [0, 3]
    assert check_shape(NAME, (2, 1)) == [2, 1]
    assert check_shape(NAME, []) == []


# -- bytes_array ---------------------------------------------------------------------------------


def test_bytes_array_from_every_string_kind():
    values = ["a", b"b", bytearray(b"c"), memoryview(b"d"), np.str_("e"), np.bytes_(b"f")]
    arr = bytes_array(values, [2, 3])
    assert arr.shape == (2, 3) and arr.dtype == object
    assert arr.ravel().tolist() == [b"a", b"b", b"c", b"d", b"e", b"f"]
    assert all(type(v) is bytes for v in arr.ravel())
    with pytest.raises(TypeError):
        bytes_array([1])


# -- InferInput / InferOutput --------------------------------------------------------------------


@pytest.mark.parametrize("cls", [InferInput, InferOutput])
def test_tensor_from_json_data(cls):
    t = cls(NAME, [2, 2], "INT32", [[1, 2], [3, 4]], parameters={"content_type": "np"})
    assert (t.name, t.shape, t.datatype) == (NAME, [2, 2], "INT32")
    assert t.parameters == {"content_type": "np"}
    arr = t.as_numpy()
    assert arr.dtype == np.int32 and arr.tolist() == [[1, 2], [3, 4]]
    assert t.as_numpy() is arr  # converted once
    assert t.data == [[1, 2], [3, 4]]  # the data as it was given
    assert t.to_dict() == {
        "name": NAME,
        "shape": [2, 2],
        "datatype": "INT32",
        "parameters": {"content_type": "np"},
        "data": [[1, 2], [3, 4]],
    }
    assert repr(t) == f"{cls.__name__}(name={NAME!r}, shape=[2, 2], datatype='INT32')"


@pytest.mark.parametrize("cls", [InferInput, InferOutput])
def test_tensor_without_data(cls):
    t = cls(NAME, [1], "FP32")
    assert t.parameters == {} and t.data is None
    with rejected("no data"):
        t.as_numpy()


@pytest.mark.parametrize("cls", [InferInput, InferOutput])
@pytest.mark.parametrize("datatype", sorted(NUMERIC))
def test_set_data_from_numpy_every_numeric_datatype(cls, datatype):
    arr = np.arange(6).reshape(2, 3).astype(to_np_dtype(datatype))
    t = cls(NAME, [6], datatype)
    t.set_data_from_numpy(arr)
    assert t.shape == [2, 3]  # the array's shape wins
    assert t.as_numpy() is arr
    assert t.data == arr.ravel().tolist()  # the data property is flat, in JSON types
    assert all(type(v) in (bool, int, float) for v in t.data)
    d = t.to_dict()
    assert d == {"name": NAME, "shape": [2, 3], "datatype": datatype, "data": arr.ravel().tolist()}
    t.set_data_from_numpy(arr, binary_data=False)
    assert "binary_data" not in t.parameters


def test_set_data_from_numpy_big_endian_array_is_stored_in_native_order():
    big = np.arange(3, dtype=">i4")
    t = InferOutput(NAME, [3], "INT32")
    t.set_data_from_numpy(big)
    assert t.as_numpy().dtype == np.dtype(np.int32) and t.as_numpy().dtype.isnative
    assert t.as_numpy().tolist() == [0, 1, 2] and t.data == [0, 1, 2]


def test_set_data_from_numpy_replaces_earlier_json_data():
    t = InferInput(NAME, [2], "FP32", [1.0, 2.0])
    assert t.data == [1.0, 2.0]
    t.set_data_from_numpy(np.array([5.0], dtype=np.float32), binary_data=False)
    assert t.data == [5.0] and t.shape == [1]


@pytest.mark.parametrize(
    "datatype, array",
    [
        ("FP32", np.zeros(2, dtype=np.float64)),
        ("FP64", np.zeros(2, dtype=np.float32)),
        ("INT32", np.zeros(2, dtype=np.int64)),
        ("UINT8", np.zeros(2, dtype=np.int8)),
        ("BOOL", np.zeros(2, dtype=np.uint8)),
        ("BYTES", np.zeros(2, dtype=np.int32)),
        ("INT64", np.array(["a", "b"])),
    ],
)
def test_set_data_from_numpy_dtype_mismatch_is_rejected(datatype, array):
    t = InferInput(NAME, [2], datatype)
    with rejected(f"declared {datatype}"):
        t.set_data_from_numpy(array)


def test_set_data_from_numpy_needs_an_array():
    with rejected():
        InferInput(NAME, [2], "FP32").set_data_from_numpy([1.0, 2.0])


@pytest.mark.parametrize(
    "array",
    [
        np.array([["a", "é"], ["", "xyz"]]),
        np.array([[b"a", "é".encode()], [b"", b"xyz"]]),
        np.array([["a", b"\xc3\xa9"], ["", np.str_("xyz")]], dtype=object),
    ],
    ids=["str", "bytes", "object"],
)
def test_set_data_from_numpy_bytes_from_str_bytes_and_object_arrays(array):
    t = InferOutput(NAME, [4], "BYTES")
    t.set_data_from_numpy(array)
    arr = t.as_numpy()
    assert arr.dtype == object and arr.shape == (2, 2)
    assert all(type(v) is bytes for v in arr.ravel())
    assert arr.tolist() == [[b"a", "é".encode()], [b"", b"xyz"]]
    assert t.as_string() == [["a", "é"], ["", "xyz"]]
    assert t.data == ["a", "é", "", "xyz"]
    assert t.to_dict()["data"] == ["a", "é", "", "xyz"]


def test_as_string_of_json_bytes_tensor_keeps_its_shape():
    t = InferInput(NAME, [2, 1], "BYTES", ["hello", "wörld"])
    assert t.as_string() == [["hello"], ["wörld"]]


def test_as_string_rejects_invalid_utf8_and_non_bytes_tensors():
    t = InferOutput(NAME, [2], "BYTES")
    t.set_data_from_numpy(np.array([b"ok", b"\xff\xfe"], dtype=object))
    with rejected("UTF-8"):
        t.as_string()
    # Raw bytes that are not text cannot go into a JSON data list either.
    with pytest.raises(InvalidInput, match="UTF-8"):
        t.to_dict()
    with rejected("not BYTES"):
        InferInput(NAME, [1], "FP32", [1.0]).as_string()


def test_to_dict_hides_binary_parameters():
    t = InferOutput(NAME, [1], "FP32", [1.0], parameters={"binary_data": True, "binary_data_size": 4, "x": 1})
    assert t.to_dict()["parameters"] == {"x": 1}
    t = InferOutput(NAME, [1], "FP32", [1.0], parameters={"binary_data": False})
    assert "parameters" not in t.to_dict()


def test_parameters_setter_and_set_shape():
    t = InferInput(NAME, [2], "FP32", [1.0, 2.0])
    t.parameters = None
    assert t.parameters == {}
    t.parameters = {"a": 1}
    assert t.parameters == {"a": 1}
    t.set_shape([1, 2])
    assert t.shape == [1, 2] and t.as_numpy().shape == (1, 2)


def test_tensor_equality():
    a = InferInput(NAME, [2], "FP32", [1.0, 2.0])
    b = InferInput(NAME, [2], "FP32")
    b.set_data_from_numpy(np.array([1.0, 2.0], dtype=np.float32))
    assert a == b  # JSON data and an array with the same values
    assert a != InferInput(NAME, [2], "FP32", [1.0, 3.0])
    assert a != InferInput("other", [2], "FP32", [1.0, 2.0])
    assert a != InferInput(NAME, [2], "FP64", [1.0, 2.0])
    assert a != InferInput(NAME, [1, 2], "FP32", [1.0, 2.0])
    assert a != InferOutput(NAME, [2], "FP32", [1.0, 2.0])  # an input is not an output
    assert InferInput(NAME, [1], "BYTES", ["x"]) == InferInput(NAME, [1], "BYTES", [b"x"])


# -- RequestedOutput, InferRequest, InferResponse ----------------------------------------------


def test_requested_output():
    out = RequestedOutput("y")
    assert out.parameters == {} and out.binary_data is None
    assert RequestedOutput("y", {"binary_data": True}).binary_data is True
    assert RequestedOutput("y", {"binary_data": False}).binary_data is False
    assert RequestedOutput("y", {"a": 1}) == RequestedOutput("y", {"a": 1})
    assert RequestedOutput("y", {"a": 1}) != RequestedOutput("y", {"a": 2})
    assert RequestedOutput("y") != RequestedOutput("z")
    assert repr(RequestedOutput("y")) == "RequestedOutput(name='y', parameters={})"


def _request(**kwargs) -> InferRequest:
    inputs = [InferInput("a", [2], "FP32", [1.0, 2.0]), InferInput("b", [1], "BYTES", ["x"])]
    return InferRequest("m", inputs, **kwargs)


def test_infer_request_helpers():
    req = _request(request_id="r1", parameters={"binary_data_output": True}, request_outputs=[RequestedOutput("y")])
    assert req.model_name == "m" and req.id == "r1" and req.model_version is None
    assert req.get_input_by_name("b") is req.inputs[1]
    assert req.get_input_by_name("nope") is None
    assert req.input_names() == ["a", "b"]
    assert req.use_binary_outputs is True
    assert _request().use_binary_outputs is False
    assert _request(parameters={"binary_data_output": False}).use_binary_outputs is False
    assert _request().parameters == {} and _request().request_outputs is None
    assert req.to_dict() == {
        "id": "r1",
        "parameters": {"binary_data_output": True},
        "inputs": [
            {"name": "a", "shape": [2], "datatype": "FP32", "data": [1.0, 2.0]},
            {"name": "b", "shape": [1], "datatype": "BYTES", "data": ["x"]},
        ],
        "outputs": [{"name": "y"}],
    }
    assert "InferRequest(model_name='m', id='r1'" in repr(req)


def test_infer_request_equality():
    assert _request(request_id="r") == _request(request_id="r")
    assert _request(request_outputs=[]) == _request()
    assert _request(request_id="r") != _request(request_id="s")
    assert _request(parameters={"a": 1}) != _request()
    assert _request(request_outputs=[RequestedOutput("y")]) != _request()
    assert _request() != InferRequest("other", _request().inputs)
    assert _request() != InferRequest(
        "m", [InferInput("a", [2], "FP32", [1.0, 2.5]), InferInput("b", [1], "BYTES", ["x"])]
    )
    assert _request() != "not a request"


def test_infer_request_as_dataframe_one_column_per_input():
    pd = pytest.importorskip("pandas")
    req = InferRequest(
        "m",
        [
            InferInput("num", [3], "FP32", [1.0, 2.0, 3.0]),
            InferInput("text", [3, 1], "BYTES", ["a", "b", "é"]),
            InferInput("count", [3, 1], "INT64", [[1], [2], [3]]),
        ],
    )
    df = req.as_dataframe()
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["num", "text", "count"]
    assert df["num"].tolist() == [1.0, 2.0, 3.0]
    assert df["text"].tolist() == ["a", "b", "é"]
    assert df["count"].tolist() == [1, 2, 3]


def test_infer_request_as_dataframe_single_2d_input_is_the_frame():
    pytest.importorskip("pandas")
    df = InferRequest("m", [InferInput("x", [2, 3], "INT32", [1, 2, 3, 4, 5, 6])]).as_dataframe()
    assert df.shape == (2, 3)
    assert df.values.tolist() == [[1, 2, 3], [4, 5, 6]]


def test_infer_response_helpers_and_equality():
    outputs = [InferOutput("y", [2], "INT64", [1, 2])]
    resp = InferResponse("r1", "m", outputs, model_version="3", parameters={"p": 1})
    assert resp.get_output_by_name("y") is outputs[0]
    assert resp.get_output_by_name("z") is None
    assert resp.use_binary_outputs is False and resp.requested_outputs is None
    assert resp.to_dict() == {
        "model_name": "m",
        "model_version": "3",
        "id": "r1",
        "parameters": {"p": 1},
        "outputs": [{"name": "y", "shape": [2], "datatype": "INT64", "data": [1, 2]}],
    }
    assert InferResponse(None, "m", []).to_dict() == {"model_name": "m", "outputs": []}
    same = InferResponse("r1", "m", [InferOutput("y", [2], "INT64", [1, 2])], model_version="3", parameters={"p": 1})
    assert resp == same
    assert resp != InferResponse("r2", "m", outputs, model_version="3", parameters={"p": 1})
    assert resp != InferResponse("r1", "n", outputs, model_version="3", parameters={"p": 1})
    assert resp != InferResponse("r1", "m", outputs, model_version="3")
    assert resp != InferResponse(
        "r1", "m", [InferOutput("y", [2], "INT64", [1, 3])], model_version="3", parameters={"p": 1}
    )
    assert resp != object()
    assert "InferResponse(model_name='m', id='r1'" in repr(resp)


@pytest.mark.parametrize("datatype", ["FP16", "FP32", "FP64"])
@pytest.mark.parametrize(
    "data",
    [
        [5.1, 3.5, 1.4, 0.2],
        [0.0, -0.0, 1e-45, 65504.0],
        [3.4028234663852886e38, -1.0, 2.5, 7.0],
        [1e300, 1.0, 2.0, 3.0],
        [float("nan"), 1.0, 2.0, 3.0],
        [1.0, float("inf"), 2.0, 3.0],
        [float(i) / 7 for i in range(100)],
    ],
)
def test_flat_float_fast_path_matches_checked_path(datatype, data):
    # A flat list of floats takes a short path; a tuple of the same values takes the checked one.
    def outcome(values):
        try:
            arr = array_from_json("x", datatype, [len(data)], values)
            return arr.dtype, arr.tobytes()
        except InvalidInput as exc:
            return str(exc)

    assert outcome(list(data)) == outcome(tuple(data))

"""modelport.wire.raw: tensors as raw little-endian bytes (binary extension and gRPC raw contents)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from modelport.errors import InvalidInput
from modelport.types import bytes_array, to_np_dtype
from modelport.wire.raw import array_from_raw, array_to_raw, deserialize_bytes_tensor, serialize_bytes_tensor

NUMERIC = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"]


def _sample(datatype: str, shape=(2, 3)) -> np.ndarray:
    dtype = to_np_dtype(datatype)
    n = int(np.prod(shape))
    if datatype == "BOOL":
        return (np.arange(n) % 2 == 0).reshape(shape)
    if dtype.kind == "f":
        return (np.arange(n) - 2.5).astype(dtype).reshape(shape)
    info = np.iinfo(dtype)
    values = [info.min, info.max, 0, 1, info.max - 1, info.min + 1][:n] + list(range(max(0, n - 6)))
    return np.array(values, dtype=dtype).reshape(shape)


# -- BYTES ------------------------------------------------------------------------------------


def test_bytes_tensor_is_length_prefixed_little_endian():
    arr = bytes_array([b"ab", b"", "é"])
    raw = serialize_bytes_tensor(arr)
    assert raw == struct.pack("<I", 2) + b"ab" + struct.pack("<I", 0) + struct.pack("<I", 2) + "é".encode()
    assert array_to_raw(arr, "BYTES") == raw


@pytest.mark.parametrize(
    "values",
    [
        [b"hello", b"world"],
        [b"", b"", b""],
        [b"\xff\xfe\x00", b"\x00", b"\x80abc"],  # not UTF-8, embedded NULs
        [bytes(range(256)) * 300],  # one element longer than 65535 bytes
        ["text", "ünïcode", ""],
    ],
    ids=["ascii", "empty-strings", "non-utf8", "long", "str"],
)
def test_bytes_round_trip(values):
    arr = bytes_array(values)
    back = deserialize_bytes_tensor(serialize_bytes_tensor(arr))
    expected = [v.encode() if isinstance(v, str) else v for v in values]
    assert back.dtype == object and back.tolist() == expected
    assert all(type(v) is bytes for v in back)
    shaped = array_from_raw(array_to_raw(arr, "BYTES"), "BYTES", [len(values), 1])
    assert shaped.shape == (len(values), 1) and shaped.ravel().tolist() == expected


def test_bytes_zero_elements():
    assert serialize_bytes_tensor(bytes_array([])) == b""
    back = deserialize_bytes_tensor(b"")
    assert back.dtype == object and back.shape == (0,)
    assert array_from_raw(b"", "BYTES", [0, 4]).shape == (0, 4)


def test_bytes_serialize_accepts_str_and_bytes_objects_in_object_arrays():
    arr = np.array(["a", b"b", bytearray(b"c"), np.str_("d"), np.bytes_(b"e")], dtype=object)
    assert deserialize_bytes_tensor(serialize_bytes_tensor(arr)).tolist() == [b"a", b"b", b"c", b"d", b"e"]
    # A 2-D array serialises in row-major order.
    grid = bytes_array(["1", "2", "3", "4"], [2, 2])
    assert deserialize_bytes_tensor(serialize_bytes_tensor(grid.T)).tolist() == [b"1", b"3", b"2", b"4"]


def test_bytes_deserialize_from_memoryview_slice():
    raw = b"junk" + serialize_bytes_tensor(bytes_array(["x", "yz"])) + b"tail"
    view = memoryview(raw)[4:-4]
    assert deserialize_bytes_tensor(view).tolist() == [b"x", b"yz"]


@pytest.mark.parametrize(
    "raw, what",
    [
        (b"\x01", "truncated"),
        (b"\x01\x00\x00", "truncated"),
        (struct.pack("<I", 1) + b"a" + b"\x02\x00", "truncated"),
        (struct.pack("<I", 5) + b"abc", "overruns"),
        (struct.pack("<I", 0xFFFFFFFF), "overruns"),
        (struct.pack("<I", 1) + b"a" + struct.pack("<I", 2) + b"b", "overruns"),
    ],
)
def test_bytes_truncated_or_overrunning_buffers_are_rejected(raw, what):
    with pytest.raises(InvalidInput, match=what) as info:
        deserialize_bytes_tensor(raw, "words")
    assert "'words'" in str(info.value)
    with pytest.raises(InvalidInput, match="'words'"):
        array_from_raw(raw, "BYTES", [1], "words")


def test_bytes_element_count_must_match_shape():
    raw = serialize_bytes_tensor(bytes_array(["a", "b", "c"]))
    for shape in ([2], [4], [2, 2], [0]):
        with pytest.raises(InvalidInput, match="'words': shape .* needs .* elements, but the binary data has 3"):
            array_from_raw(raw, "BYTES", shape, "words")


# -- numeric ------------------------------------------------------------------------------------


@pytest.mark.parametrize("datatype", NUMERIC)
def test_numeric_round_trip(datatype):
    arr = _sample(datatype)
    raw = array_to_raw(arr, datatype)
    assert bytes(raw) == arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    assert len(raw) == arr.nbytes
    back = array_from_raw(raw, datatype, [2, 3])
    assert back.dtype == to_np_dtype(datatype)
    assert back.shape == (2, 3)
    np.testing.assert_array_equal(back, arr)


def test_fp16_bits_are_kept_exactly():
    arr = np.array([0.0, -0.0, 1 / 3, 65504.0, 6e-8, np.inf, -np.inf], dtype=np.float16)
    back = array_from_raw(array_to_raw(arr, "FP16"), "FP16", [7])
    assert back.view(np.uint16).tolist() == arr.view(np.uint16).tolist()
    nan = np.array([np.nan], dtype=np.float16)
    assert np.isnan(array_from_raw(array_to_raw(nan, "FP16"), "FP16", [1])[0])


@pytest.mark.parametrize("datatype", NUMERIC)
def test_numeric_zero_elements(datatype):
    arr = np.zeros((0, 3), dtype=to_np_dtype(datatype))
    raw = array_to_raw(arr, datatype)
    assert bytes(raw) == b""
    back = array_from_raw(raw, datatype, [0, 3])
    assert back.shape == (0, 3) and back.dtype == arr.dtype


@pytest.mark.parametrize("datatype", ["INT32", "FP64", "UINT16"])
def test_numeric_scalar_and_non_contiguous_arrays(datatype):
    arr = _sample(datatype, (4, 6))
    view = arr[::2, 1::3]  # not contiguous
    raw = array_to_raw(view, datatype)
    np.testing.assert_array_equal(array_from_raw(raw, datatype, [2, 2]), view)
    scalar = arr[1, 1].reshape(())
    np.testing.assert_array_equal(array_from_raw(array_to_raw(scalar, datatype), datatype, []), scalar)


@pytest.mark.parametrize("datatype", ["INT16", "INT32", "INT64", "UINT32", "FP16", "FP32", "FP64"])
def test_big_endian_arrays_are_written_little_endian(datatype):
    arr = _sample(datatype)
    big = arr.astype(arr.dtype.newbyteorder(">"))
    raw = array_to_raw(big, datatype)
    assert bytes(raw) == bytes(array_to_raw(arr, datatype))
    np.testing.assert_array_equal(array_from_raw(raw, datatype, [2, 3]), arr)


@pytest.mark.parametrize("datatype", NUMERIC)
def test_numeric_size_mismatch_is_rejected(datatype):
    itemsize = to_np_dtype(datatype).itemsize
    raw = bytes(6 * itemsize)
    for shape in ([5], [7], [2, 2], [0]):
        with pytest.raises(
            InvalidInput, match=f"'x': shape .* of {datatype} needs .* bytes, but the binary data has {len(raw)}"
        ):
            array_from_raw(raw, datatype, shape, "x")
    if itemsize > 1:  # a buffer that is not a whole number of elements
        with pytest.raises(InvalidInput, match="'x'"):
            array_from_raw(raw[:-1], datatype, [6], "x")


def test_unknown_datatype_is_rejected():
    with pytest.raises(InvalidInput, match="Unsupported datatype 'COMPLEX64'"):
        array_from_raw(b"\x00" * 8, "COMPLEX64", [1], "x")


def test_numeric_decode_is_a_zero_copy_view():
    body = bytearray(b"HEAD" + np.arange(6, dtype=np.float32).tobytes() + b"TAIL")
    chunk = memoryview(body)[4:-4]
    arr = array_from_raw(chunk, "FP32", [2, 3])
    assert arr.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert np.shares_memory(arr, np.frombuffer(body, dtype=np.uint8))
    # The view sees later writes to the buffer: nothing was copied.
    body[4:8] = np.float32(42.0).tobytes()
    assert arr[0, 0] == 42.0


def test_numeric_decode_of_immutable_bytes_is_a_read_only_view():
    raw = np.arange(4, dtype=np.int64).tobytes()
    arr = array_from_raw(raw, "INT64", [4])
    assert arr.base is not None and not arr.flags.owndata
    assert not arr.flags.writeable


def test_numeric_encode_is_a_view_of_the_array():
    arr = np.arange(4, dtype=np.int32)
    raw = array_to_raw(arr, "INT32")
    assert isinstance(raw, memoryview)
    arr[0] = 99
    assert struct.unpack_from("<i", raw)[0] == 99

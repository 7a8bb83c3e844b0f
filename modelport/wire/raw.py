"""Tensors as raw little-endian bytes: the binary tensor extension (REST) and raw contents (gRPC).

Numeric tensors are viewed with ``numpy.frombuffer`` (no copy, no per-element Python work); BYTES
tensors are a sequence of elements each prefixed by its 4-byte little-endian length.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from ..errors import InvalidInput
from ..types import bytes_array, to_np_dtype

_LEN = struct.Struct("<I")


def serialize_bytes_tensor(array: np.ndarray) -> bytes:
    parts = []
    for value in array.ravel():
        if isinstance(value, str):
            value = value.encode()
        elif not isinstance(value, (bytes, bytearray, memoryview)):
            # bytes(5) would quietly be five NUL bytes: refuse anything that is not text or bytes.
            raise TypeError(f"BYTES element {value!r} is {type(value).__name__}, not bytes or str")
        parts.append(_LEN.pack(len(value)))
        parts.append(value)
    return b"".join(parts)


def deserialize_bytes_tensor(buffer: bytes | memoryview, name: str = "") -> np.ndarray:
    view = memoryview(buffer)
    items = []
    offset, end = 0, len(view)
    while offset < end:
        if offset + 4 > end:
            raise InvalidInput(f"Input {name!r}: truncated BYTES element length at offset {offset}")
        (length,) = _LEN.unpack_from(view, offset)
        offset += 4
        if offset + length > end:
            raise InvalidInput(f"Input {name!r}: BYTES element of {length} bytes overruns the buffer")
        items.append(bytes(view[offset : offset + length]))
        offset += length
    return bytes_array(items)


def array_to_raw(array: np.ndarray, datatype: str) -> bytes | memoryview:
    """The raw little-endian bytes of a tensor."""
    if datatype == "BYTES":
        return serialize_bytes_tensor(array)
    array = np.ascontiguousarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    # Flattened first: memoryview cannot cast an N-d view with a zero in its shape (empty tensors).
    return memoryview(array.reshape(-1)).cast("B")


def array_from_raw(buffer: bytes | memoryview, datatype: str, shape: list[int], name: str = "") -> np.ndarray:
    """A view of raw bytes as an array of ``shape``; raises InvalidInput when the sizes disagree."""
    expected = math.prod(shape)
    if datatype == "BYTES":
        array = deserialize_bytes_tensor(buffer, name)
        if array.size != expected:
            raise InvalidInput(
                f"Input {name!r}: shape {shape} needs {expected} elements, but the binary data has {array.size}"
            )
        return array.reshape(shape)
    dtype = to_np_dtype(datatype)
    if len(buffer) != expected * dtype.itemsize:
        raise InvalidInput(
            f"Input {name!r}: shape {shape} of {datatype} needs {expected * dtype.itemsize} bytes, "
            f"but the binary data has {len(buffer)}"
        )
    return np.frombuffer(buffer, dtype=dtype.newbyteorder("<")).reshape(shape)

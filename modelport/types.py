"""Protocol-neutral inference messages: one internal type per Open Inference Protocol message.

Tensors are numpy arrays end to end. JSON ``data`` lists are turned into arrays once, when a tensor
is first read, and checked against the declared shape and datatype; binary payloads arrive here as
arrays already (viewed with ``numpy.frombuffer`` by the wire codecs). BYTES tensors are object arrays
whose elements are ``bytes``.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Iterable

import numpy as np

from .errors import InvalidInput

Parameters = dict[str, Any]

# Open Inference Protocol datatype -> numpy dtype.
_NP_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(np.object_),
}
DATATYPES = tuple(_NP_DTYPES)
_V2_DATATYPES = {dt: name for name, dt in _NP_DTYPES.items() if name != "BYTES"}
# Which inferred numpy kinds a JSON list may have for each target kind ("b"ool, "i"nt, "u"int, "f"loat).
_JSON_KINDS = {"b": "b", "i": "iu", "u": "iu", "f": "fiu", "O": "USO"}
_BOOL_TYPES = frozenset((bool, np.bool_))
_SEQ_TYPES = frozenset((list, tuple))
_FLOAT_ONLY = frozenset((float,))


def to_np_dtype(datatype: str) -> np.dtype:
    try:
        return _NP_DTYPES[datatype]
    except KeyError:
        raise InvalidInput(
            f"Unsupported datatype {datatype!r}; expected one of {', '.join(_NP_DTYPES)}"
        ) from None


def from_np_dtype(dtype: np.dtype) -> str:
    if not isinstance(dtype, np.dtype):
        dtype = np.dtype(dtype)
    name = _V2_DATATYPES.get(dtype)
    if name is None and dtype.byteorder not in "=|":
        name = _V2_DATATYPES.get(dtype.newbyteorder("="))  # e.g. big-endian '>f4' is still FP32
    if name is not None:
        return name
    if dtype.kind in "USO":
        return "BYTES"
    raise InvalidInput(f"numpy dtype {dtype} has no Open Inference Protocol datatype")


def _flatten(data: Any) -> list:
    """Nested lists as one flat row-major list; raises ValueError when the nesting is ragged."""
    if not isinstance(data, (list, tuple)):
        return [data]
    if _SEQ_TYPES.isdisjoint(map(type, data)):
        return list(data)
    out: list = []
    _walk(data, out, 0)
    return out


def _walk(data: Any, out: list, depth: int) -> tuple:
    if not isinstance(data, (list, tuple)):
        out.append(data)
        return ()
    if depth >= MAX_DIMS:  # deeper than any tensor can be: refuse before Python's recursion limit
        raise ValueError(f"data nested deeper than {MAX_DIMS} levels")
    shapes = {_walk(item, out, depth + 1) for item in data}
    if len(shapes) > 1:
        raise ValueError("ragged nested lists")
    return (len(data), *shapes.pop()) if shapes else (0,)


_FLOAT_MAX = {2: float(np.finfo(np.float16).max), 4: float(np.finfo(np.float32).max), 8: float(np.finfo(np.float64).max)}


def _peak(arr: np.ndarray) -> float:
    """The largest magnitude in ``arr`` (NaN ignored); Python's max beats a numpy reduction on small arrays."""
    if arr.size <= 64:
        return max((abs(v) for v in arr.ravel().tolist() if v == v), default=0.0)
    return float(np.nanmax(np.abs(arr)))


def _has_bools(data: Any, ndim: int) -> bool:
    """Whether rectangular nested lists of depth ``ndim`` hold a bool (numpy quietly makes it 0 or 1)."""
    if not isinstance(data, (list, tuple)):
        return type(data) in _BOOL_TYPES
    items: Any = data
    for _ in range(ndim - 1):
        items = itertools.chain.from_iterable(items)
    return not _BOOL_TYPES.isdisjoint(map(type, items))


def _to_bytes(value: Any) -> bytes:
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):  # incl. np.bytes_: elements are plain bytes
        return bytes(value)
    if isinstance(value, np.str_):
        return str(value).encode()
    raise TypeError(f"{type(value).__name__} is not bytes or str")


def bytes_array(values: Iterable[Any], shape: Iterable[int] | None = None) -> np.ndarray:
    """An object array of ``bytes`` (the BYTES representation) from str/bytes values."""
    flat = [_to_bytes(v) for v in values]
    arr = np.empty(len(flat), dtype=np.object_)
    arr[:] = flat
    return arr.reshape(tuple(shape)) if shape is not None else arr


def _shape_size(shape: list[int]) -> int:
    return math.prod(shape)


# Bounds every decoder applies to a declared shape before any arithmetic on it (as Triton does):
# at most 64 dimensions (numpy's own limit), each a non-negative int64, and an element count that
# numpy can allocate even when a zero dimension makes the tensor empty. Without them a shape of
# thousands of huge dims costs quadratic big-integer work on the event loop.
MAX_DIMS = 64
_INT64_MAX = 2**63 - 1
# The product of the non-zero dims times the widest element (8 bytes) must fit numpy's intp.
MAX_ELEMENTS = _INT64_MAX // 8


def check_shape(name: str, shape: Any) -> list[int]:
    """``shape`` as a list of ints, or InvalidInput; cheap for any input (no repr of unbounded data)."""
    if not isinstance(shape, (list, tuple)):
        raise InvalidInput(f"Input {name!r}: shape must be a list of non-negative integers, got a {type(shape).__name__}")
    if len(shape) > MAX_DIMS:
        raise InvalidInput(f"Input {name!r}: shape has {len(shape)} dimensions; at most {MAX_DIMS} are supported")
    size = 1
    for d in shape:
        if not isinstance(d, int) or isinstance(d, bool):
            raise InvalidInput(
                f"Input {name!r}: shape must be a list of non-negative integers, got an element of type {type(d).__name__}"
            )
        if d < 0:
            raise InvalidInput(f"Input {name!r}: shape dimension {d} is negative" if d >= -_INT64_MAX else f"Input {name!r}: shape dimension is negative")
        if d > _INT64_MAX:
            raise InvalidInput(f"Input {name!r}: shape dimension is larger than the int64 maximum {_INT64_MAX}")
        if d:
            size *= d
            if size > MAX_ELEMENTS:
                raise InvalidInput(f"Input {name!r}: shape {list(shape)} is too large (more than {MAX_ELEMENTS} elements)")
    return list(shape)


def array_from_json(name: str, datatype: str, shape: list[int], data: Any) -> np.ndarray:
    """Turn a JSON ``data`` field (flat or nested) into an array of ``shape``, or raise InvalidInput."""
    return _array_from_json(name, datatype, check_shape(name, shape), data)


def _array_from_json(
    name: str, datatype: str, shape: list[int], data: Any, parsed: np.ndarray | None = None
) -> np.ndarray:
    """:func:`array_from_json` for a shape that :func:`check_shape` has already returned; ``parsed``:
    ``np.asarray(data)`` when the caller has made it already (it is not made twice)."""
    try:
        dtype = to_np_dtype(datatype)
    except InvalidInput as exc:
        raise InvalidInput(f"Input {name!r}: {exc}") from None
    expected = _shape_size(shape)
    if dtype.kind == "f" and type(data) is list and len(data) == expected and _FLOAT_ONLY.issuperset(map(type, data)):
        # The common case, a flat list of JSON floats: no type inference, no bool or kind checks (all
        # are floats). A value beyond the narrower type's range (or inf) takes the checked path below.
        if dtype.itemsize == 8:
            return np.array(data, dtype=dtype).reshape(shape)
        if expected <= 64:
            if max(map(abs, data), default=0.0) <= _FLOAT_MAX[dtype.itemsize]:
                return np.array(data, dtype=dtype).reshape(shape)
        else:
            # One pass over the list, not two: the doubles, checked, then narrowed (the same single
            # rounding as converting the Python floats directly).
            wide = np.array(data, dtype=np.float64)
            if np.abs(wide).max() <= _FLOAT_MAX[dtype.itemsize]:
                return wide.astype(dtype).reshape(shape)
    try:
        if dtype.kind == "O":
            flat = _flatten(data)
            if len(flat) != expected:
                raise InvalidInput(
                    f"Input {name!r}: shape {shape} needs {expected} elements, but data has {len(flat)}"
                )
            return bytes_array(flat, shape)
        arr = np.asarray(data) if parsed is None else parsed
        if dtype.kind in "iu" and arr.dtype.kind in "fO" and all(type(v) is int for v in _flatten(data)):
            # Integers beyond int64 make numpy infer float64 or object; read them as the target type
            # directly (numpy refuses any that do not fit).
            try:
                arr = np.asarray(data, dtype=dtype)
            except OverflowError:
                raise InvalidInput(f"Input {name!r}: values out of range for datatype {datatype}") from None
        if arr.dtype.kind == "O":
            raise ValueError("ragged or mixed-type data")
        if arr.size != expected:
            raise InvalidInput(
                f"Input {name!r}: shape {shape} needs {expected} elements, but data has {arr.size}"
            )
        if arr.size and arr.dtype.kind not in _JSON_KINDS[dtype.kind]:
            raise InvalidInput(f"Input {name!r}: data of kind {arr.dtype} does not fit datatype {datatype}")
        if arr.size and dtype.kind != "b" and arr.dtype.kind != "b" and _has_bools(data, arr.ndim):
            raise InvalidInput(f"Input {name!r}: true/false values do not fit datatype {datatype}")
        if arr.size and dtype.kind in "iu" and arr.dtype != dtype:
            info = np.iinfo(dtype)
            if arr.min() < info.min or arr.max() > info.max:
                raise InvalidInput(f"Input {name!r}: values out of range for datatype {datatype}")
        if arr.size and dtype.kind == "f" and arr.dtype != dtype and (arr.dtype.kind != "f" or arr.dtype.itemsize > dtype.itemsize):
            # A finite number that would only become infinite in the narrower type does not fit it.
            peak = _peak(arr)
            if peak > _FLOAT_MAX[dtype.itemsize] and math.isfinite(peak):
                raise InvalidInput(f"Input {name!r}: values out of range for datatype {datatype}")
        return arr.astype(dtype, copy=False).reshape(shape)
    except InvalidInput:
        raise
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInput(f"Input {name!r}: data does not fit datatype {datatype} and shape {shape}: {exc}") from None


class _Tensor:
    """What InferInput and InferOutput share: a named, typed, shaped tensor with parameters."""

    __slots__ = ("_name", "_shape", "_datatype", "_data", "_array", "_parameters", "_binary", "_grpc_bytes")

    def __init__(self, name: str, shape: list[int], datatype: str, data: Any = None, parameters: Parameters | None = None):
        self._name = name
        self._shape = list(shape)
        self._datatype = datatype
        self._parameters = parameters if parameters is not None else {}
        self._array: np.ndarray | None = None
        self._data: Any = None
        # The sender's wish to send this tensor as binary data (set_data_from_numpy); a client
        # honours it, a server answers as the request asked.
        self._binary: bool | None = None
        # A BYTES tensor decoded from a gRPC message: ``data`` gives its elements as bytes.
        self._grpc_bytes = False
        if isinstance(data, np.ndarray):
            self._array = data
        else:
            self._data = data

    # -- plain attributes ------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def datatype(self) -> str:
        return self._datatype

    @property
    def shape(self) -> list[int]:
        return self._shape

    def set_shape(self, shape: list[int]) -> None:
        self._shape = list(shape)

    @property
    def parameters(self) -> Parameters:
        return self._parameters

    @parameters.setter
    def parameters(self, value: Parameters | None) -> None:
        self._parameters = value if value is not None else {}

    @property
    def data(self) -> Any:
        """The data as a (flat or nested) list: JSON values, except that a BYTES tensor that came
        over gRPC gives ``bytes`` elements (as KServe gives them; REST gives text)."""
        if self._data is None and self._array is not None:
            arr = self._array
            if arr.dtype.kind in "OSU":  # text, as JSON has it; from gRPC, bytes (as KServe gives them)
                self._data = [(_plain if self._grpc_bytes else _json_item)(v) for v in arr.ravel()]
            else:
                self._data = arr.ravel().tolist()
        return self._data

    def _json_data(self) -> Any:
        """:attr:`data` fit for JSON: BYTES elements as UTF-8 text."""
        data = self.data
        if self._datatype == "BYTES" and isinstance(data, list):
            return [_json_item(v) for v in _flatten(data)] if _has_bytes(data) else data
        return data

    # -- numpy -------------------------------------------------------------------------------
    def as_numpy(self) -> np.ndarray:
        if self._array is None:
            if self._data is None:
                raise InvalidInput(f"Tensor {self._name!r} has no data")
            self._array = array_from_json(self._name, self._datatype, self._shape, self._data)
        return self._array

    def as_string(self) -> list:
        """BYTES data decoded as UTF-8 strings, nested to the tensor's shape."""
        if self._datatype != "BYTES":
            raise InvalidInput(f"Tensor {self._name!r} is {self._datatype}, not BYTES")
        arr = self.as_numpy()
        try:
            decoded = [v.decode() if isinstance(v, bytes) else str(v) for v in arr.ravel()]
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"Tensor {self._name!r} is not valid UTF-8: {exc}") from None
        return np.array(decoded, dtype=object).reshape(arr.shape).tolist()

    def set_data_from_numpy(self, array: np.ndarray, binary_data: bool = True) -> None:
        if not isinstance(array, np.ndarray):
            raise InvalidInput(f"Tensor {self._name!r}: expected a numpy array, got {type(array).__name__}")
        datatype = from_np_dtype(array.dtype)
        if datatype != self._datatype:
            raise InvalidInput(
                f"Tensor {self._name!r} is declared {self._datatype} but the array is {array.dtype}"
            )
        if datatype == "BYTES":
            array = bytes_array(array.ravel(), array.shape)
        elif not array.dtype.isnative:  # e.g. big-endian: the codecs and orjson expect native order
            array = array.astype(array.dtype.newbyteorder("="))
        self._array = array
        self._data = None
        self._shape = list(array.shape)
        self._binary = bool(binary_data)

    def _check(self) -> None:
        """Validate data against shape and datatype now rather than later."""
        arr = self.as_numpy()
        if list(arr.shape) != self._shape:
            if arr.size != _shape_size(self._shape):
                raise InvalidInput(
                    f"Tensor {self._name!r}: shape {self._shape} needs {_shape_size(self._shape)} elements, "
                    f"but data has {arr.size}"
                )
            self._array = arr.reshape(self._shape)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self._name, "shape": self._shape, "datatype": self._datatype}
        params = {k: v for k, v in self._parameters.items() if k not in ("binary_data", "binary_data_size")}
        if params:
            out["parameters"] = params
        out["data"] = self._json_data()
        return out

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return (
            self._name == other._name
            and self._datatype == other._datatype
            and self._shape == other._shape
            and np.array_equal(self.as_numpy(), other.as_numpy())
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r}, shape={self._shape}, datatype={self._datatype!r})"


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _has_bytes(data: list) -> bool:
    return any(isinstance(v, (bytes, bytearray)) for v in _flatten(data))


def _json_item(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise InvalidInput(
                "BYTES element is not valid UTF-8 and cannot be sent as JSON; ask for binary data"
            ) from None
    return value.item() if isinstance(value, np.generic) else value


class InferInput(_Tensor):
    """One input tensor of an inference request."""

    __slots__ = ()


class InferOutput(_Tensor):
    """One output tensor of an inference response."""

    __slots__ = ()


def output_of(name: str, array: np.ndarray, binary_data: bool = False) -> InferOutput:
    """``InferOutput(name, shape, datatype)`` with ``set_data_from_numpy(array, binary_data)``, in one
    step: the datatype worked out once, the shape copied once (a model's result, on every response)."""
    datatype = from_np_dtype(array.dtype)
    if datatype == "BYTES":
        array = bytes_array(array.ravel(), array.shape)
    elif not array.dtype.isnative:  # e.g. big-endian: the codecs and orjson expect native order
        array = array.astype(array.dtype.newbyteorder("="))
    out = InferOutput.__new__(InferOutput)
    out._name, out._shape, out._datatype, out._parameters = name, list(array.shape), datatype, {}
    out._array, out._data, out._binary, out._grpc_bytes = array, None, bool(binary_data), False
    return out


class RequestedOutput:
    """An output the client asked for, with its per-output parameters (e.g. ``binary_data``)."""

    __slots__ = ("name", "parameters")

    def __init__(self, name: str, parameters: Parameters | None = None):
        self.name = name
        self.parameters = parameters if parameters is not None else {}

    @property
    def binary_data(self) -> bool | None:
        value = self.parameters.get("binary_data")
        return None if value is None else bool(value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RequestedOutput) and (self.name, self.parameters) == (other.name, other.parameters)

    def __repr__(self) -> str:
        return f"RequestedOutput(name={self.name!r}, parameters={self.parameters!r})"


class InferRequest:
    """An Open Inference Protocol inference request, whichever transport it arrived by."""

    def __init__(
        self,
        model_name: str,
        infer_inputs: list[InferInput],
        request_id: str | None = None,
        raw_inputs: Any = None,
        from_grpc: bool = False,
        parameters: Parameters | None = None,
        request_outputs: list[RequestedOutput] | None = None,
        model_version: str | None = None,
    ):
        self.model_name = model_name
        self.model_version = model_version
        self.id = request_id
        self.inputs = infer_inputs
        self.parameters = parameters if parameters is not None else {}
        self.request_outputs = request_outputs
        self.from_grpc = from_grpc

    @property
    def use_binary_outputs(self) -> bool:
        return bool(self.parameters.get("binary_data_output", False))

    def get_input_by_name(self, name: str) -> InferInput | None:
        for tensor in self.inputs:
            if tensor.name == name:
                return tensor
        return None

    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    def as_dataframe(self):
        """The inputs as a pandas DataFrame, one column per input (needs pandas)."""
        from ._optional import import_optional

        pd = import_optional("pandas", extra="pandas")
        columns = {}
        for tensor in self.inputs:
            arr = tensor.as_numpy()
            if tensor.datatype == "BYTES":
                arr = np.array(tensor.as_string(), dtype=object)
            if arr.ndim > 1 and arr.shape[-1] == 1:
                arr = arr.reshape(arr.shape[0])
            if arr.ndim == 2 and len(self.inputs) == 1:
                return pd.DataFrame(arr)
            columns[tensor.name] = list(arr) if arr.ndim > 1 else arr
        return pd.DataFrame(columns)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.id is not None:
            out["id"] = self.id
        if self.parameters:
            out["parameters"] = self.parameters
        out["inputs"] = [t.to_dict() for t in self.inputs]
        if self.request_outputs:
            out["outputs"] = [
                {"name": o.name, **({"parameters": o.parameters} if o.parameters else {})} for o in self.request_outputs
            ]
        return out

    # -- KServe's conversions (kserve.protocol.infer_type), done by modelport's wire codecs --------
    @classmethod
    def from_grpc(cls, request: Any) -> "InferRequest":
        from .wire.grpc.convert import request_from_proto

        return request_from_proto(request)

    @classmethod
    def from_bytes(cls, req_bytes: bytes, json_length: int, model_name: str) -> "InferRequest":
        from .wire.v2_json import decode_request

        return decode_request(req_bytes, model_name, None, json_length)

    @classmethod
    def from_inference_request(cls, request: Any, model_name: str) -> "InferRequest":
        """From a V2 request document (a dict, or a pydantic model such as KServe's InferenceRequest)."""
        from .wire.v2_json import request_from_dict

        doc = request.model_dump(exclude_none=True) if hasattr(request, "model_dump") else request
        for tensor in doc.get("inputs") or () if isinstance(doc, dict) else ():
            if isinstance(tensor, dict) and tensor.get("datatype") == "FP16" and tensor.get("data"):
                raise InvalidInput(  # as KServe: FP16 has no JSON form
                    f"Sending FP16 data via JSON is not supported. Please use the binary data format for input {tensor.get('name')}"
                )
        return request_from_dict(doc, model_name)

    def to_rest(self) -> tuple[dict[str, Any] | bytes, int | None]:
        """The REST V2 body as KServe builds it: a dict, or bytes and the JSON part's length when an
        input was set with ``binary_data=True`` (see :mod:`modelport.compat.kserve.to_rest`)."""
        from .compat.kserve.to_rest import request_to_rest

        return request_to_rest(self)

    def to_grpc(self) -> Any:
        from .wire.grpc.convert import request_to_proto

        return request_to_proto(self, raw=False)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InferRequest):
            return NotImplemented
        return (
            self.model_name == other.model_name
            and self.id == other.id
            and self.inputs == other.inputs
            and self.parameters == other.parameters
            and (self.request_outputs or []) == (other.request_outputs or [])
        )

    def __repr__(self) -> str:
        return f"InferRequest(model_name={self.model_name!r}, id={self.id!r}, inputs={self.inputs!r})"


class InferResponse:
    """An Open Inference Protocol inference response."""

    def __init__(
        self,
        response_id: str | None,
        model_name: str,
        infer_outputs: list[InferOutput],
        model_version: str | None = None,
        raw_outputs: Any = None,
        from_grpc: bool = False,
        parameters: Parameters | None = None,
        use_binary_outputs: bool = False,
        requested_outputs: list[RequestedOutput] | None = None,
    ):
        self.id = response_id
        self.model_name = model_name
        self.model_version = model_version
        self.outputs = infer_outputs
        self.parameters = parameters if parameters is not None else {}
        self.from_grpc = from_grpc
        self.use_binary_outputs = use_binary_outputs
        self.requested_outputs = requested_outputs

    def get_output_by_name(self, name: str) -> InferOutput | None:
        for tensor in self.outputs:
            if tensor.name == name:
                return tensor
        return None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model_name": self.model_name}
        if self.model_version is not None:
            out["model_version"] = self.model_version
        if self.id is not None:
            out["id"] = self.id
        if self.parameters:
            out["parameters"] = self.parameters
        out["outputs"] = [t.to_dict() for t in self.outputs]
        return out

    # -- KServe's conversions (kserve.protocol.infer_type), done by modelport's wire codecs --------
    @classmethod
    def from_grpc(cls, response: Any) -> "InferResponse":
        from .wire.grpc.convert import response_from_proto

        return response_from_proto(response)

    @classmethod
    def from_rest(cls, response: dict[str, Any], model_name: str | None = None) -> "InferResponse":
        from .wire.v2_json import response_from_dict

        out = response_from_dict(response)
        if model_name and not out.model_name:
            out.model_name = model_name
        return out

    @classmethod
    def from_bytes(cls, res_bytes: bytes, json_length: int) -> "InferResponse":
        from .wire.v2_json import decode_response

        return decode_response(res_bytes, json_length)

    def to_rest(self) -> tuple[dict[str, Any] | bytes, int | None]:
        """The REST V2 body as KServe builds it: a dict, or bytes and the JSON part's length when
        outputs are binary (see :mod:`modelport.compat.kserve.to_rest`)."""
        from .compat.kserve.to_rest import response_to_rest

        return response_to_rest(self)

    def to_grpc(self) -> Any:
        from .wire.grpc.convert import response_to_proto

        return response_to_proto(self, raw=False)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InferResponse):
            return NotImplemented
        return (
            self.model_name == other.model_name
            and self.id == other.id
            and self.outputs == other.outputs
            and self.parameters == other.parameters
        )

    def __repr__(self) -> str:
        return f"InferResponse(model_name={self.model_name!r}, id={self.id!r}, outputs={self.outputs!r})"


__all__ = [
    "DATATYPES",
    "InferInput",
    "InferOutput",
    "InferRequest",
    "InferResponse",
    "RequestedOutput",
    "array_from_json",
    "bytes_array",
    "from_np_dtype",
    "to_np_dtype",
]

"""MLServer's content-type codecs (``from mlserver.codecs import NumpyCodec``), same names and results.

An *input codec* turns one tensor (``RequestInput``/``ResponseOutput``) into a Python value and back;
a *request codec* does so for a whole request/response. Codecs are found by content type (the
``parameters.content_type`` of a tensor, a request, or the model's metadata), by type hint
(``decode_args``), or by the payload's type. Behaviour follows MLServer 1.7: 1-D arrays gain a
trailing dimension, strings go out as UTF-8 bytes, NaN goes out as null.
"""

from __future__ import annotations

import base64
import binascii
import inspect
from datetime import datetime
from functools import wraps
from typing import Any, Callable, Dict, List, Optional, Type, Union, get_args, get_origin

import numpy as np

from .errors import MLServerError
from .types import Datatype, InferenceRequest, InferenceResponse, MetadataTensor, Parameters, RequestInput, RequestOutput, ResponseOutput

try:  # PandasCodec needs pandas (the "pandas" extra); everything else works without it
    import pandas as _pd
except ImportError:  # pragma: no cover - pandas is in the test extra
    _pd = None

DecodedParameterName = "_decoded_payload"
DefaultOutputPrefix = "output-"
DefaultInputPrefix = "input-"
InputOrOutput = Union[RequestInput, ResponseOutput]


# -- errors --------------------------------------------------------------------------------------
class CodecError(MLServerError):
    def __init__(self, msg: str):
        super().__init__(msg, 400)


class CodecNotFound(CodecError):
    def __init__(self, name: Optional[str] = None, payload_type: Optional[str] = None,
                 is_input: bool = False, is_request: bool = False):
        kind = ("request" if is_request else "input") if is_input else ("response" if is_request else "output")
        msg = f"Codec not found for {kind} field {name}" if name else f"Codec not found for {kind}"
        if payload_type:
            msg += f" with type {payload_type}"
        super().__init__(msg)


class InputsNotFound(CodecError):
    def __init__(self, inputs: List[RequestInput], codecs: Dict[str, Any]):
        names = ", ".join(i.name for i in inputs)
        super().__init__(f"Input(s) {names} not found among the predict method's arguments ({', '.join(codecs)})")


class OutputNotFound(CodecError):
    def __init__(self, idx: int, output_type: Type, hints: List[Type]):
        super().__init__(f"Output {idx} of type {output_type} does not match the return type hints {hints}")


# -- registry ------------------------------------------------------------------------------------
class InputCodec:
    ContentType: Optional[str] = None
    TypeHint: Any = None

    @classmethod
    def can_encode(cls, payload: Any) -> bool:
        return False

    @classmethod
    def encode_output(cls, name: str, payload: Any, **kwargs: Any) -> ResponseOutput:
        raise NotImplementedError()

    @classmethod
    def decode_output(cls, response_output: ResponseOutput) -> Any:
        raise NotImplementedError()

    @classmethod
    def encode_input(cls, name: str, payload: Any, **kwargs: Any) -> RequestInput:
        raise NotImplementedError()

    @classmethod
    def decode_input(cls, request_input: RequestInput) -> Any:
        raise NotImplementedError()

    # MLServer's old names, kept there with a warning.
    @classmethod
    def encode(cls, name: str, payload: Any) -> ResponseOutput:
        _deprecated("encode", "encode_output")
        return cls.encode_output(name, payload)

    @classmethod
    def decode(cls, request_input: RequestInput) -> Any:
        _deprecated("decode", "decode_input")
        return cls.decode_input(request_input)


def _deprecated(old: str, new: str) -> None:
    from .logging import logger

    logger.warning(f"DEPRECATED! The {old}() method is now deprecated. Use {new}() instead.")


class RequestCodec:
    ContentType: Optional[str] = None
    TypeHint: Any = None

    @classmethod
    def can_encode(cls, payload: Any) -> bool:
        return False

    @classmethod
    def encode_response(cls, model_name: str, payload: Any, model_version: Optional[str] = None, **kwargs: Any) -> InferenceResponse:
        raise NotImplementedError()

    @classmethod
    def decode_response(cls, response: InferenceResponse) -> Any:
        raise NotImplementedError()

    @classmethod
    def encode_request(cls, payload: Any, **kwargs: Any) -> InferenceRequest:
        raise NotImplementedError()

    @classmethod
    def decode_request(cls, request: InferenceRequest) -> Any:
        raise NotImplementedError()

    @classmethod
    def encode(cls, model_name: str, payload: Any, model_version: Optional[str] = None) -> InferenceResponse:
        _deprecated("encode", "encode_response")
        return cls.encode_response(model_name, payload, model_version)

    @classmethod
    def decode(cls, request: InferenceRequest) -> Any:
        _deprecated("decode", "decode_request")
        return cls.decode_request(request)


InputCodecLike = Union[Type[InputCodec], InputCodec]
RequestCodecLike = Union[Type[RequestCodec], RequestCodec]
class _CodecRegistry:
    """Codecs by content type, found by content type, payload or type hint (MLServer's registry)."""

    def __init__(self, input_codecs: Optional[Dict[str, Any]] = None, request_codecs: Optional[Dict[str, Any]] = None):
        self._input_codecs: Dict[str, Any] = {} if input_codecs is None else input_codecs
        self._request_codecs: Dict[str, Any] = {} if request_codecs is None else request_codecs

    def register_input_codec(self, content_type: str, codec: Any) -> None:
        self._input_codecs[content_type] = codec

    def register_request_codec(self, content_type: str, codec: Any) -> None:
        self._request_codecs[content_type] = codec

    @staticmethod
    def _lookup(codecs: Dict[str, Any], content_type: Optional[str], payload: Any, type_hint: Any) -> Any:
        if content_type:
            return codecs.get(content_type)
        if payload is not None:  # MLServer tests truthiness, which an array refuses
            return _first(c for c in codecs.values() if c.can_encode(payload))
        if type_hint is not None:
            return _first(c for c in codecs.values() if c.TypeHint == type_hint)
        return None

    def find_input_codec(self, content_type: Optional[str] = None, payload: Any = None, type_hint: Any = None) -> Optional[InputCodecLike]:
        return self._lookup(self._input_codecs, content_type, payload, type_hint)

    def find_request_codec(self, content_type: Optional[str] = None, payload: Any = None, type_hint: Any = None) -> Optional[RequestCodecLike]:
        return self._lookup(self._request_codecs, content_type, payload, type_hint)

    def find_input_codec_by_payload(self, payload: Any) -> Optional[InputCodecLike]:
        return _first(c for c in self._input_codecs.values() if c.can_encode(payload))

    def find_request_codec_by_payload(self, payload: Any) -> Optional[RequestCodecLike]:
        return _first(c for c in self._request_codecs.values() if c.can_encode(payload))

    def find_input_codec_by_type_hint(self, type_hint: Any) -> Optional[InputCodecLike]:
        return _first(c for c in self._input_codecs.values() if c.TypeHint == type_hint)

    def find_request_codec_by_type_hint(self, type_hint: Any) -> Optional[RequestCodecLike]:
        return _first(c for c in self._request_codecs.values() if c.TypeHint == type_hint)


def _first(codecs: Any) -> Any:
    return next(iter(codecs), None)


_codec_registry = _CodecRegistry()
find_input_codec = _codec_registry.find_input_codec
find_request_codec = _codec_registry.find_request_codec
find_input_codec_by_payload = _codec_registry.find_input_codec_by_payload
find_request_codec_by_payload = _codec_registry.find_request_codec_by_payload
find_input_codec_by_type_hint = _codec_registry.find_input_codec_by_type_hint
find_request_codec_by_type_hint = _codec_registry.find_request_codec_by_type_hint


def register_input_codec(codec: Any) -> Any:
    if codec.ContentType is not None:
        _codec_registry.register_input_codec(codec.ContentType, codec)
    return codec


def register_request_codec(codec: Any) -> Any:
    if codec.ContentType is not None:
        _codec_registry.register_request_codec(codec.ContentType, codec)
    return codec


# -- helpers -------------------------------------------------------------------------------------
def _raw(data: Any) -> Any:
    return getattr(data, "root", data)


def _is_list_of(payload: Any, kind: Type) -> bool:
    return isinstance(payload, list) and all(isinstance(x, kind) for x in payload)


def _as_list(data: Any) -> list:
    if isinstance(data, (str, bytes)):
        return [data]
    if isinstance(data, np.ndarray):
        return data.ravel().tolist()
    return list(data)


def inject_batch_dimension(shape: List[int]) -> List[int]:
    """A 1-D shape ``[N]`` is sent as ``[N, 1]``."""
    return shape if len(shape) > 1 else shape + [1]


def _save_decoded(obj: Any, value: Any) -> None:
    if not obj.parameters:
        obj.parameters = Parameters()
    setattr(obj.parameters, DecodedParameterName, value)


def has_decoded(obj: Any) -> bool:
    return bool(obj.parameters) and hasattr(obj.parameters, DecodedParameterName)


def get_decoded(obj: Any) -> Any:
    return getattr(obj.parameters, DecodedParameterName) if has_decoded(obj) else None


def get_decoded_or_raw(obj: Any) -> Any:
    if has_decoded(obj):
        return get_decoded(obj)
    if isinstance(obj, (RequestInput, ResponseOutput)):
        return obj.data
    return obj


def _content_type(obj: Any, metadata: Any = None) -> Optional[str]:
    if obj.parameters and obj.parameters.content_type:
        return obj.parameters.content_type
    if metadata is not None and metadata.parameters and metadata.parameters.content_type:
        return metadata.parameters.content_type
    return None


# -- numpy ---------------------------------------------------------------------------------------
_TO_NUMPY = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
    "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "FP16": "float16", "FP32": "float32", "FP64": "float64", "BYTES": "bytes",
}
_FROM_NUMPY = {v: k for k, v in _TO_NUMPY.items()} | {"object": "BYTES", "S": "BYTES", "U": "BYTES", "O": "BYTES"}


def _datatype(value: Any) -> str:
    return value.value if isinstance(value, Datatype) else str(value)


def to_dtype(tensor: InputOrOutput) -> np.dtype:
    datatype = _datatype(tensor.datatype)
    if datatype == "BYTES":
        if _is_list_of(_raw(tensor.data), str):
            return np.dtype(str)
        return np.dtype((bytes, tensor.shape[-1]))
    return np.dtype(_TO_NUMPY[datatype])


def to_datatype(dtype: np.dtype) -> Datatype:
    name = str(dtype)
    return Datatype(_FROM_NUMPY[name] if name in _FROM_NUMPY else _FROM_NUMPY[dtype.kind])


def _encode_str(value: str) -> bytes:
    return value.encode("utf-8")


def _decode_str(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return ""


def _nan_to_none(value: Any) -> Any:
    return None if isinstance(value, float) and value != value else value


def _encode_array(array: np.ndarray, datatype: Any) -> list:
    if _datatype(datatype) == "BYTES":
        if array.dtype.kind == "U":
            return [_encode_str(v) for v in array.ravel().tolist()]
        if array.dtype.kind == "S":
            return [array.tobytes()]
        return array.ravel().tolist()
    flat = array.ravel().tolist()
    if array.dtype.kind == "f" and np.isnan(array).any():
        flat = [_nan_to_none(v) for v in flat]
    return flat


def _to_ndarray(tensor: InputOrOutput) -> np.ndarray:
    data = _raw(tensor.data)
    dtype = to_dtype(tensor)
    if _datatype(tensor.datatype) == "BYTES" and _is_list_of(data, bytes):
        return np.concatenate([np.frombuffer(buffer, dtype) for buffer in data])
    return np.array(data, dtype)


@register_input_codec
class NumpyCodec(InputCodec):
    """A tensor as a numpy array."""

    ContentType = "np"
    TypeHint = np.ndarray

    @classmethod
    def can_encode(cls, payload: Any) -> bool:
        return isinstance(payload, np.ndarray)

    @classmethod
    def encode_output(cls, name: str, payload: np.ndarray, **kwargs: Any) -> ResponseOutput:
        datatype = to_datatype(payload.dtype)
        return ResponseOutput(
            name=name, datatype=datatype, shape=inject_batch_dimension(list(payload.shape)),
            data=_encode_array(payload, datatype), parameters=Parameters(content_type=cls.ContentType),
        )

    @classmethod
    def decode_output(cls, response_output: ResponseOutput) -> np.ndarray:
        return cls.decode_input(response_output)  # type: ignore[arg-type]

    @classmethod
    def encode_input(cls, name: str, payload: np.ndarray, **kwargs: Any) -> RequestInput:
        out = cls.encode_output(name, payload)
        return RequestInput(name=out.name, datatype=out.datatype, shape=out.shape, data=out.data,
                            parameters=Parameters(content_type=cls.ContentType))

    @classmethod
    def decode_input(cls, request_input: RequestInput) -> np.ndarray:
        return _to_ndarray(request_input).reshape(request_input.shape)


# -- strings and base64 -------------------------------------------------------------------------
@register_input_codec
class StringCodec(InputCodec):
    """A BYTES tensor as a list of str (UTF-8)."""

    ContentType = "str"
    TypeHint = List[str]

    @classmethod
    def can_encode(cls, payload: Any) -> bool:
        return _is_list_of(payload, str)

    @classmethod
    def encode_output(cls, name: str, payload: List[str], use_bytes: bool = True, **kwargs: Any) -> ResponseOutput:
        packed = [_encode_str(s) for s in payload] if use_bytes else list(payload)
        return ResponseOutput(name=name, datatype="BYTES", shape=[len(payload), 1], data=packed,
                              parameters=Parameters(content_type=cls.ContentType))

    @classmethod
    def decode_output(cls, response_output: ResponseOutput) -> List[str]:
        return [_decode_str(v) for v in _as_list(_raw(response_output.data))]

    @classmethod
    def encode_input(cls, name: str, payload: List[str], use_bytes: bool = True, **kwargs: Any) -> RequestInput:
        out = cls.encode_output(name, payload, use_bytes)
        return RequestInput(name=out.name, datatype=out.datatype, shape=out.shape, data=out.data, parameters=out.parameters)

    @classmethod
    def decode_input(cls, request_input: RequestInput) -> List[str]:
        return [_decode_str(v) for v in _as_list(_raw(request_input.data))]


def _b64_encode(value: Any, use_bytes: bool) -> Any:
    encoded = base64.b64encode(value.encode("ascii") if isinstance(value, str) else value)
    return encoded if use_bytes else encoded.decode("ascii")


def _b64_decode(value: Any) -> bytes:
    raw = value.encode("ascii") if isinstance(value, str) else value
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error:  # not base64: taken as the bytes themselves, as MLServer does
        return raw


@register_input_codec
class Base64Codec(InputCodec):
    """A BYTES tensor of base64 text as a list of bytes."""

    ContentType = "base64"
    TypeHint = List[bytes]

    @classmethod
    def can_encode(cls, payload: Any) -> bool:
        return _is_list_of(payload, bytes)

    @classmethod
    def encode_output(cls, name: str, payload: List[bytes], use_bytes: bool = True, **kwargs: Any) -> ResponseOutput:
        return ResponseOutput(name=name, datatype="BYTES", shape=[len(payload), 1],
                              data=[_b64_encode(v, use_bytes) for v in payload],
                              parameters=Parameters(content_type=cls.ContentType))

    @classmethod
    def decode_output(cls, response_output: ResponseOutput) -> List[bytes]:
        return [_b64_decode(v) for v in _as_list(_raw(response_output.data))]

    @classmethod
    def encode_input(cls, name: str, payload: List[bytes], use_bytes: bool = True, **kwargs: Any) -> RequestInput:
        out = cls.encode_output(name, payload, use_bytes)
        return RequestInput(name=out.name, datatype=out.datatype, shape=out.shape, data=out.data,
                            parameters=Parameters(content_type=cls.ContentType))

    @classmethod
    def decode_input(cls, request_input: RequestInput) -> List[bytes]:
        return [_b64_decode(v) for v in _as_list(_raw(request_input.data))]


def _to_iso(value: Any, use_bytes: bool) -> Any:
    text = value if isinstance(value, str) else value.isoformat()  # a str is taken as ISO already
    return text.encode("ascii") if use_bytes else text


def _from_iso(value: Any) -> datetime:
    return datetime.fromisoformat(value if isinstance(value, str) else value.decode("ascii"))


@register_input_codec
class DatetimeCodec(InputCodec):
    """A BYTES tensor of ISO 8601 text as a list of datetime."""

    ContentType = "datetime"
    TypeHint = List[Union[str, datetime]]

    @classmethod
    def can_encode(cls, payload: Any) -> bool:
        return _is_list_of(payload, datetime)

    @classmethod
    def encode_output(cls, name: str, payload: List[Any], use_bytes: bool = True, **kwargs: Any) -> ResponseOutput:
        return ResponseOutput(name=name, datatype="BYTES", shape=[len(payload), 1],
                              data=[_to_iso(v, use_bytes) for v in payload],
                              parameters=Parameters(content_type=cls.ContentType))

    @classmethod
    def decode_output(cls, response_output: ResponseOutput) -> List[datetime]:
        return [_from_iso(v) for v in _as_list(_raw(response_output.data))]

    @classmethod
    def encode_input(cls, name: str, payload: List[Any], use_bytes: bool = True, **kwargs: Any) -> RequestInput:
        out = cls.encode_output(name, payload, use_bytes=use_bytes)
        return RequestInput(name=out.name, datatype=out.datatype, shape=out.shape, data=out.data,
                            parameters=Parameters(content_type=cls.ContentType))

    @classmethod
    def decode_input(cls, request_input: RequestInput) -> List[datetime]:
        return [_from_iso(v) for v in _as_list(_raw(request_input.data))]


# -- request codecs -------------------------------------------------------------------------------
class SingleInputRequestCodec(RequestCodec):
    """A whole request (response) as its one input (output), through ``InputCodec``."""

    InputCodec: Any = None

    @classmethod
    def can_encode(cls, payload: Any) -> bool:
        return cls.InputCodec is not None and cls.InputCodec.can_encode(payload)

    @classmethod
    def encode_response(cls, model_name: str, payload: Any, model_version: Optional[str] = None, **kwargs: Any) -> InferenceResponse:
        output = cls.InputCodec.encode_output(f"{DefaultOutputPrefix}1", payload, **kwargs)
        return InferenceResponse(model_name=model_name, model_version=model_version,
                                 parameters=Parameters(content_type=cls.ContentType), outputs=[output])

    @classmethod
    def decode_response(cls, response: InferenceResponse) -> Any:
        if len(response.outputs) != 1:
            raise CodecError(f"The '{cls.ContentType}' codec only supports a single output tensor ({len(response.outputs)} were received)")
        first = response.outputs[0]
        if not has_decoded(first):
            _save_decoded(first, cls.InputCodec.decode_output(first))
        return get_decoded_or_raw(first)

    @classmethod
    def encode_request(cls, payload: Any, **kwargs: Any) -> InferenceRequest:
        inp = cls.InputCodec.encode_input(f"{DefaultInputPrefix}1", payload, **kwargs)
        return InferenceRequest(inputs=[inp], parameters=Parameters(content_type=cls.ContentType))

    @classmethod
    def decode_request(cls, request: InferenceRequest) -> Any:
        if len(request.inputs) != 1:
            raise CodecError(f"The '{cls.ContentType}' codec only supports a single input tensor ({len(request.inputs)} were received)")
        first = request.inputs[0]
        if not has_decoded(first):
            _save_decoded(first, cls.InputCodec.decode_input(first))
        return get_decoded_or_raw(first)


@register_request_codec
class NumpyRequestCodec(SingleInputRequestCodec):
    InputCodec = NumpyCodec
    ContentType = NumpyCodec.ContentType


@register_request_codec
class StringRequestCodec(SingleInputRequestCodec):
    InputCodec = StringCodec
    ContentType = StringCodec.ContentType
    TypeHint = List[str]


def _series(tensor: InputOrOutput) -> Any:
    if tensor.parameters is not None and tensor.parameters.content_type == PandasCodec.JsonContentType:
        from .codecs_json import decode_json_input_or_output

        return _pd.Series(decode_json_input_or_output(tensor))
    payload = get_decoded_or_raw(tensor)
    payload = _raw(payload)
    if _datatype(tensor.datatype) == "BYTES":
        return _pd.Series(payload)
    if isinstance(payload, np.ndarray):
        payload = payload.reshape(tensor.shape[0], 1).squeeze(axis=1)
    return _pd.Series(payload, dtype=to_dtype(tensor))


def _column_output(series: Any, use_bytes: bool) -> ResponseOutput:
    datatype = to_datatype(series.dtype).value
    data = series.tolist()
    if series.isnull().any():
        data = [_nan_to_none(v) for v in data]
    content_type = None
    if datatype == "BYTES":
        if all(isinstance(v, (str, bytes)) for v in data):
            content_type = StringCodec.ContentType
            data = [_encode_str(v) if isinstance(v, str) and use_bytes else v for v in data]
        else:  # a column of mixed values: each one as a JSON document
            from .codecs_json import encode_to_json

            content_type = PandasCodec.JsonContentType
            data = [encode_to_json(v, use_bytes) for v in data]
    return ResponseOutput(name=str(series.name), shape=inject_batch_dimension(list(series.shape)), data=data,
                          datatype=datatype, parameters=Parameters(content_type=content_type) if content_type else None)


@register_request_codec
class PandasCodec(RequestCodec):
    """A request (response) as a DataFrame, one column per input (output); needs pandas."""

    ContentType = "pd"
    JsonContentType = "pd_json"
    TypeHint = _pd.DataFrame if _pd is not None else None

    @classmethod
    def _pandas(cls) -> Any:
        if _pd is None:
            raise ImportError("pandas is needed for the pd codec: pip install 'modelport[pandas]'")
        return _pd

    @classmethod
    def can_encode(cls, payload: Any) -> bool:
        return _pd is not None and isinstance(payload, _pd.DataFrame)

    @classmethod
    def encode_outputs(cls, payload: Any, use_bytes: bool = True) -> List[ResponseOutput]:
        return [_column_output(payload[col], use_bytes) for col in payload]

    @classmethod
    def encode_response(cls, model_name: str, payload: Any, model_version: Optional[str] = None, use_bytes: bool = True, **kwargs: Any) -> InferenceResponse:
        return InferenceResponse(model_name=model_name, model_version=model_version,
                                 parameters=Parameters(content_type=cls.ContentType),
                                 outputs=cls.encode_outputs(payload, use_bytes))

    @classmethod
    def decode_response(cls, response: InferenceResponse) -> Any:
        return cls._pandas().DataFrame({o.name: _series(o) for o in response.outputs})

    @classmethod
    def encode_request(cls, payload: Any, use_bytes: bool = True, **kwargs: Any) -> InferenceRequest:
        inputs = [RequestInput(name=o.name, datatype=o.datatype, shape=o.shape, data=o.data, parameters=o.parameters)
                  for o in cls.encode_outputs(payload, use_bytes)]
        return InferenceRequest(parameters=Parameters(content_type=cls.ContentType), inputs=inputs)

    @classmethod
    def decode_request(cls, request: InferenceRequest) -> Any:
        return cls._pandas().DataFrame({i.name: _series(i) for i in request.inputs})


# -- decoding and encoding by metadata ----------------------------------------------------------
def decode_request_input(request_input: RequestInput, metadata_inputs: Dict[str, MetadataTensor] = {}) -> Optional[Any]:  # noqa: B006
    content_type = _content_type(request_input, metadata_inputs.get(request_input.name))
    codec = find_input_codec(content_type) if content_type else None
    if codec is None:
        return None
    decoded = codec.decode_input(request_input)
    _save_decoded(request_input, decoded)
    return decoded


def decode_inference_request(request: InferenceRequest, model_settings: Any = None,
                             metadata_inputs: Dict[str, MetadataTensor] = {}) -> Optional[Any]:  # noqa: B006
    for request_input in request.inputs:
        decode_request_input(request_input, metadata_inputs)
    content_type = _content_type(request, model_settings)
    codec = find_request_codec(content_type) if content_type else None
    if codec is not None:
        decoded = codec.decode_request(request)
        _save_decoded(request, decoded)
        return decoded
    return request


def encode_response_output(payload: Any, request_output: RequestOutput,
                           metadata_outputs: Dict[str, MetadataTensor] = {}) -> Optional[ResponseOutput]:  # noqa: B006
    content_type = _content_type(request_output, metadata_outputs.get(request_output.name))
    codec = find_input_codec(content_type) if content_type else find_input_codec_by_payload(payload)
    return codec.encode_output(name=request_output.name, payload=payload) if codec else None


def encode_inference_response(payload: Any, model_settings: Any) -> Optional[InferenceResponse]:
    codec = find_request_codec_by_payload(payload)
    if codec is None:
        return None
    version = model_settings.parameters.version if model_settings.parameters else None
    return codec.encode_response(model_settings.name, payload, version)


# -- decode_args ---------------------------------------------------------------------------------
def _hint_list(hint: Any) -> list:
    if hint is None:
        return []
    if isinstance(hint, tuple):  # `-> (np.ndarray, pd.DataFrame)`, as MLServer accepts
        return list(hint)
    if get_origin(hint) is tuple:
        return list(get_args(hint))
    return [hint]


def _unwrap_optional(hint: Any) -> Any:
    args = get_args(hint)
    if get_origin(hint) is Union and len(args) == 2 and type(None) in args:
        return next(a for a in args if a is not type(None))
    return hint


def _codec_for(name: Optional[str], hint: Any, is_input: bool) -> Any:
    codec = find_input_codec(type_hint=hint) or find_request_codec(type_hint=hint)
    if codec is None:
        raise CodecNotFound(name=name, payload_type=str(hint), is_input=is_input)
    return codec


def _is_request_codec(codec: Any) -> bool:
    return isinstance(codec, type) and issubclass(codec, RequestCodec)


class SignatureCodec(RequestCodec):
    """Maps a predict method's type hints to codecs (what ``decode_args`` uses)."""

    def __init__(self, predict: Callable):
        # inspect, not typing.get_type_hints: a plain tuple `-> (a, b)` is no type to the latter.
        hints = {k: _unwrap_optional(v) for k, v in inspect.get_annotations(predict, eval_str=True).items()}
        self._output_hints = _hint_list(hints.pop("return", None))
        self._input_codecs = {name: _codec_for(name, hint, True) for name, hint in hints.items()}
        self._output_codecs = [_codec_for(None, hint, False) for hint in self._output_hints]

    def decode_request(self, request: InferenceRequest) -> Dict[str, Any]:  # type: ignore[override]
        inputs: Dict[str, Any] = {}
        extra = []
        for request_input in request.inputs:
            codec = self._input_codecs.get(request_input.name)
            if codec is None:
                extra.append(request_input)
            elif _is_request_codec(codec):
                raise CodecNotFound(name=request_input.name, is_input=True)
            else:
                inputs[request_input.name] = codec.decode_input(request_input)
        if extra:
            aggregate = next(((n, c) for n, c in self._input_codecs.items() if _is_request_codec(c)), None)
            if aggregate is None:
                raise InputsNotFound(extra, self._input_codecs)
            name, codec = aggregate
            inputs[name] = codec.decode_request(InferenceRequest(inputs=extra))
        return inputs

    def encode_response(self, model_name: str, payload: Any, model_version: Optional[str] = None, **kwargs: Any) -> InferenceResponse:  # type: ignore[override]
        payloads = list(payload) if isinstance(payload, tuple) else [payload]
        outputs: List[ResponseOutput] = []
        for idx, value in enumerate(payloads):
            if idx >= len(self._output_codecs) or not self._output_codecs[idx].can_encode(value):
                raise OutputNotFound(idx, type(value), self._output_hints)
            codec = self._output_codecs[idx]
            if _is_request_codec(codec):
                outputs += codec.encode_response(model_name="", payload=value).outputs
            else:
                outputs.append(codec.encode_output(name=f"output-{idx}", payload=value))
        return InferenceResponse(model_name=model_name, model_version=model_version, outputs=outputs)


def decode_args(predict: Callable) -> Callable:
    """Decorate ``async def predict(self, a: np.ndarray, b: List[str]) -> np.ndarray``: inputs are
    decoded by name from their type hints, and the return value encoded by its hint."""
    codec = SignatureCodec(predict)

    @wraps(predict)
    async def _predict(self: Any, request: InferenceRequest) -> InferenceResponse:
        outputs = await predict(self, **codec.decode_request(request))
        return codec.encode_response(model_name=self.name, payload=outputs, model_version=self.version)

    return _predict


__all__ = [
    "Base64Codec", "CodecError", "DatetimeCodec", "CodecNotFound", "DecodedParameterName", "InputCodec", "InputCodecLike",
    "InputsNotFound", "NumpyCodec", "NumpyRequestCodec", "OutputNotFound", "PandasCodec", "RequestCodec",
    "RequestCodecLike", "SignatureCodec", "SingleInputRequestCodec", "StringCodec", "StringRequestCodec",
    "decode_args", "decode_inference_request", "decode_request_input", "encode_inference_response",
    "encode_response_output", "find_input_codec", "find_input_codec_by_payload", "find_request_codec",
    "find_request_codec_by_payload", "find_input_codec_by_type_hint", "find_request_codec_by_type_hint", "get_decoded", "get_decoded_or_raw", "has_decoded",
    "inject_batch_dimension", "register_input_codec", "register_request_codec", "to_datatype", "to_dtype",
]

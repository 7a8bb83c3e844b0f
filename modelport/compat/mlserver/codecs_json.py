"""`mlserver.codecs.json`: JSON helpers that understand numpy values and bytes."""

from __future__ import annotations

import json
from typing import Any, List, Union

import numpy as np
import orjson

from .codecs_lists import as_list
from .codecs import _decode_str as decode_str


class JSONEncoderWithArray(json.JSONEncoder):
    """json's encoder, plus numpy arrays (as lists) and numpy scalars (as Python numbers)."""

    def default(self, obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, np.floating):
            return float(obj)
        if isinstance(obj, np.integer):
            return int(obj)
        return super().default(obj)


def _bytes_as_text(obj: Any) -> str:
    if isinstance(obj, bytes):
        return decode_str(obj)
    raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")


def encode_to_json_bytes(value: Any) -> bytes:
    """Compact JSON bytes; bytes values are written as text."""
    return orjson.dumps(value, default=_bytes_as_text)


def decode_from_bytelike_json_to_dict(value: Union[bytes, str]) -> Any:
    return orjson.loads(value)


def encode_to_json(value: Any, use_bytes: bool = True) -> Union[str, bytes]:
    """Compact JSON (numpy values allowed), as bytes or str."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"), cls=JSONEncoderWithArray)
    return text.encode("utf-8") if use_bytes else text


def decode_json_input_or_output(input_or_output: Any) -> List[Any]:
    """Each element of a tensor's data parsed as a JSON document."""
    data = getattr(input_or_output.data, "root", input_or_output.data)
    return [json.loads(item) for item in as_list(data)]


__all__ = [
    "JSONEncoderWithArray",
    "decode_from_bytelike_json_to_dict",
    "decode_json_input_or_output",
    "encode_to_json",
    "encode_to_json_bytes",
]

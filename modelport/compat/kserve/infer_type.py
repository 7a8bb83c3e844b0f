"""``kserve.protocol.infer_type`` under modelport: the request/response types and their conversions."""

import numpy as np

from ...errors import InferenceError
from ...types import InferInput, InferOutput, InferRequest, InferResponse, RequestedOutput
from ...wire.raw import deserialize_bytes_tensor, serialize_bytes_tensor


def serialize_byte_tensor(input_tensor: np.ndarray) -> np.ndarray:
    """KServe's spelling and return type: the serialized BYTES tensor as a 0-d object array
    (``.item()`` is the bytes), or an empty array for an empty tensor."""
    if input_tensor.size == 0:
        return np.empty([0], dtype=np.object_)
    if input_tensor.dtype != np.object_ and input_tensor.dtype.type is not np.bytes_:
        raise InferenceError("cannot serialize bytes tensor: invalid datatype")
    return np.asarray(bytes(serialize_bytes_tensor(input_tensor)), dtype=np.object_)


__all__ = [
    "InferInput",
    "InferOutput",
    "InferRequest",
    "InferResponse",
    "RequestedOutput",
    "deserialize_bytes_tensor",
    "serialize_byte_tensor",
]


def _contains_fp16_datatype(infer_response: InferResponse) -> bool:
    """Whether any output is FP16 (KServe sends those as binary data over REST)."""
    return any(output.datatype == "FP16" for output in infer_response.outputs)

"""``kserve.protocol.infer_type`` under modelport: the request/response types and their conversions."""

from ..types import InferInput, InferOutput, InferRequest, InferResponse, RequestedOutput
from ..wire.raw import deserialize_bytes_tensor, serialize_bytes_tensor

serialize_byte_tensor = serialize_bytes_tensor  # KServe's spelling

__all__ = [
    "InferInput",
    "InferOutput",
    "InferRequest",
    "InferResponse",
    "RequestedOutput",
    "deserialize_bytes_tensor",
    "serialize_byte_tensor",
]

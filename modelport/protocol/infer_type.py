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


def _contains_fp16_datatype(infer_response: InferResponse) -> bool:
    """Whether any output is FP16 (KServe sends those as binary data over REST)."""
    return any(output.datatype == "FP16" for output in infer_response.outputs)

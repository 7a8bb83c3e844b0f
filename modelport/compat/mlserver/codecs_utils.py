"""`mlserver.codecs.utils`, as MLServer code imports it."""

from typing import Union

from .codecs import (
    DecodedParameterName,
    InputCodecLike,
    InputOrOutput,
    RequestCodecLike,
    SingleInputRequestCodec,
    _save_decoded,
    decode_inference_request,
    decode_request_input,
    encode_inference_response,
    encode_response_output,
    get_decoded,
    get_decoded_or_raw,
    has_decoded,
    inject_batch_dimension,
)

Codec = Union[InputCodecLike, RequestCodecLike]

__all__ = ["Codec", "DecodedParameterName", "InputOrOutput", "SingleInputRequestCodec", "decode_inference_request",
           "decode_request_input", "encode_inference_response", "encode_response_output", "get_decoded",
           "get_decoded_or_raw", "has_decoded", "inject_batch_dimension"]

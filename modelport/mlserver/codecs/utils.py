"""`mlserver.codecs.utils`, as MLServer code imports it."""

from .._codecs import SingleInputRequestCodec, DecodedParameterName, decode_inference_request, decode_request_input, encode_inference_response, encode_response_output, get_decoded, get_decoded_or_raw, has_decoded, inject_batch_dimension

__all__ = ["SingleInputRequestCodec", "DecodedParameterName", "decode_inference_request", "decode_request_input", "encode_inference_response", "encode_response_output", "get_decoded", "get_decoded_or_raw", "has_decoded", "inject_batch_dimension"]

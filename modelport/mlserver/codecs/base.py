"""`mlserver.codecs.base`, as MLServer code imports it."""

from ...compat.mlserver.codecs import (
    InputCodec,
    InputCodecLike,
    RequestCodec,
    RequestCodecLike,
    _CodecRegistry,
    _codec_registry,
    find_input_codec,
    find_input_codec_by_payload,
    find_input_codec_by_type_hint,
    find_request_codec,
    find_request_codec_by_payload,
    find_request_codec_by_type_hint,
    register_input_codec,
    register_request_codec,
)

__all__ = [
    "InputCodec", "InputCodecLike", "RequestCodec", "RequestCodecLike", "find_input_codec",
    "find_input_codec_by_payload", "find_input_codec_by_type_hint", "find_request_codec",
    "find_request_codec_by_payload", "find_request_codec_by_type_hint", "register_input_codec", "register_request_codec",
]

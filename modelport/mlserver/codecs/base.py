"""`mlserver.codecs.base`, as MLServer code imports it."""

from .._codecs import InputCodec, RequestCodec, register_input_codec, register_request_codec, find_input_codec, find_request_codec, find_input_codec_by_payload, find_request_codec_by_payload, InputCodecLike, RequestCodecLike

__all__ = ["InputCodec", "RequestCodec", "register_input_codec", "register_request_codec", "find_input_codec", "find_request_codec", "find_input_codec_by_payload", "find_request_codec_by_payload", "InputCodecLike", "RequestCodecLike"]

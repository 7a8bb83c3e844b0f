"""`mlserver.codecs.string`, as MLServer code imports it."""

from ...compat.mlserver.codecs import StringCodec, StringRequestCodec
from ...compat.mlserver.codecs import _decode_str as decode_str
from ...compat.mlserver.codecs import _encode_str as encode_str

__all__ = ["StringCodec", "StringRequestCodec", "decode_str", "encode_str"]

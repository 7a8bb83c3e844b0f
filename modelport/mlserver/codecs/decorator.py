"""`mlserver.codecs.decorator`, as MLServer code imports it."""

from ...compat.mlserver.codecs import SignatureCodec, decode_args
from ...compat.mlserver.codecs import _hint_list as _as_list  # a return annotation's parts: Tuple[a, b] or (a, b) -> [a, b]


__all__ = ["SignatureCodec", "decode_args"]

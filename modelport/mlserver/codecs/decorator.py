"""`mlserver.codecs.decorator`, as MLServer code imports it."""

from .._codecs import decode_args, SignatureCodec

__all__ = ["decode_args", "SignatureCodec"]

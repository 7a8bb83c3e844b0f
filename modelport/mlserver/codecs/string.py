"""`mlserver.codecs.string`, as MLServer code imports it."""

from .._codecs import StringCodec, StringRequestCodec

__all__ = ["StringCodec", "StringRequestCodec"]

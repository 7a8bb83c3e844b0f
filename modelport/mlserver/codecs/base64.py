"""`mlserver.codecs.base64`, as MLServer code imports it."""

from .._codecs import Base64Codec

__all__ = ["Base64Codec"]

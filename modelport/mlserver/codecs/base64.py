"""`mlserver.codecs.base64`, as MLServer code imports it."""

from ...compat.mlserver.codecs import Base64Codec

__all__ = ["Base64Codec"]

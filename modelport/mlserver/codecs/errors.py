"""`mlserver.codecs.errors`, as MLServer code imports it."""

from ...compat.mlserver.codecs import CodecError, CodecNotFound, InputsNotFound, OutputNotFound

__all__ = ["CodecError", "CodecNotFound", "InputsNotFound", "OutputNotFound"]

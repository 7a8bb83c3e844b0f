"""`mlserver.codecs.errors`, as MLServer code imports it."""

from .._codecs import CodecError, CodecNotFound, InputsNotFound, OutputNotFound

__all__ = ["CodecError", "CodecNotFound", "InputsNotFound", "OutputNotFound"]

"""`mlserver.codecs.numpy`, as MLServer code imports it."""

from .._codecs import NumpyCodec, NumpyRequestCodec, to_datatype, to_dtype

__all__ = ["NumpyCodec", "NumpyRequestCodec", "to_datatype", "to_dtype"]

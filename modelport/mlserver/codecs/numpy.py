"""`mlserver.codecs.numpy`, as MLServer code imports it (``_to_ndarray``/``_encode_data`` are used by
MLServer's own runtimes)."""

from ...compat.mlserver.codecs import NumpyCodec, NumpyRequestCodec, _to_ndarray, to_datatype, to_dtype
from ...compat.mlserver.codecs import _encode_array as _encode_data

__all__ = ["NumpyCodec", "NumpyRequestCodec", "to_datatype", "to_dtype"]

"""`mlserver.codecs.pandas`, as MLServer code imports it."""

from .._codecs import PandasCodec
from .._codecs import _column_output as _to_response_output

__all__ = ["PandasCodec"]

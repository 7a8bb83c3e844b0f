"""`mlserver.codecs.pandas`, as MLServer code imports it."""

from ...compat.mlserver.codecs import PandasCodec
from ...compat.mlserver.codecs import _column_output as _to_response_output

__all__ = ["PandasCodec"]

"""`mlserver.codecs.pandas`, as MLServer code imports it."""

from .._codecs import PandasCodec

__all__ = ["PandasCodec"]

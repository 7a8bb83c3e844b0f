"""`mlserver.codecs.datetime`, as MLServer code imports it."""

from .._codecs import DatetimeCodec

__all__ = ["DatetimeCodec"]

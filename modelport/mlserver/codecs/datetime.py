"""`mlserver.codecs.datetime`, as MLServer code imports it."""

from ...compat.mlserver.codecs import DatetimeCodec

__all__ = ["DatetimeCodec"]

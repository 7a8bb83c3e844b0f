"""JSON for the Python values models return that orjson does not know by itself.

orjson writes dicts, lists, str, int, float, bool, None, datetime, date, time, UUID, dataclasses and
numpy arrays of numbers natively; :func:`default` is its ``default=`` hook, so it runs only for the
other types and costs the common case nothing. The rules follow FastAPI's ``jsonable_encoder`` (which
KServe's and BentoML's JSON answers go through), except where that one fails or loses data:

========================================  ====================================================
value                                     JSON
========================================  ====================================================
``Decimal``                               an int when it has no fractional exponent
                                          (``Decimal("3")`` → 3), else a float (FastAPI's rule)
pandas ``DataFrame``                      a list of records (``to_dict(orient="records")``)
pandas ``Series`` / ``Index``             a list
``set`` / ``frozenset``                   a sorted list when the items sort, else a list
``bytes`` / ``bytearray`` / memoryview    the UTF-8 text; bytes that are not UTF-8: base64
numpy scalars                             their Python value
numpy ``datetime64`` (scalar or array)    ISO 8601 text (``NaT``: null)
numpy ``timedelta64``, ``timedelta``      seconds, as a float
``datetime`` subclasses (pandas           ISO 8601 text (``NaT``: null)
``Timestamp``), ``pd.NA``
``Enum``                                  its value
``PurePath``                              the path as text
other numpy arrays (object, strings)      nested lists (their items through these rules)
========================================  ====================================================

Anything else raises :class:`Unencodable`, whose message names the type.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import enum
import math
from pathlib import PurePath
from typing import Any

import numpy as np


class Unencodable(TypeError):
    """A value of a type no rule here turns into JSON (the message names the type)."""

    def __init__(self, value: Any):
        cls = type(value)
        self.type_name = cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
        super().__init__(f"a value of type {self.type_name} cannot be sent as JSON")


def default(value: Any) -> Any:
    """orjson's ``default=`` hook: a value orjson can write (it calls the hook again on what's inside)."""
    if isinstance(value, np.generic):
        if isinstance(value, np.datetime64):
            return None if np.isnat(value) else np.datetime_as_string(value)
        if isinstance(value, np.timedelta64):
            return None if np.isnat(value) else value / np.timedelta64(1, "s")
        return value.item()
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "M":
            return np.where(np.isnat(value), None, np.datetime_as_string(value)).tolist()
        if value.dtype.kind == "m":
            return np.where(np.isnat(value), None, value / np.timedelta64(1, "s")).tolist()
        return value.tolist()
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode("ascii")
    if isinstance(value, decimal.Decimal):
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:  # items that do not compare (mixed types): their iteration order
            return list(value)
    if isinstance(value, datetime.datetime):  # a subclass (pandas Timestamp); orjson writes plain ones
        return _timestamp(value)
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    pandas = _pandas_value(value)
    if pandas is not _UNKNOWN:
        return pandas
    raise Unencodable(value)


_UNKNOWN = object()


def _timestamp(value: datetime.datetime) -> str | None:
    if value != value:  # pandas NaT (a datetime that equals nothing, itself included)
        return None
    return value.isoformat()


def _pandas_value(value: Any) -> Any:
    """DataFrame, Series, Index, NA and NaT, recognised by module so pandas is never imported here."""
    module = type(value).__module__
    if not module.startswith("pandas"):
        return _UNKNOWN
    name = type(value).__name__
    if name == "DataFrame":
        return value.to_dict(orient="records")
    if name == "Series" or name.endswith("Index"):
        return value.tolist()
    if name in ("NAType", "NaTType"):
        return None
    if name == "Timedelta":
        seconds = value.total_seconds()
        return None if math.isnan(seconds) else seconds
    return _UNKNOWN


__all__ = ["Unencodable", "default"]

"""`mlserver.codecs.decorator`, as MLServer code imports it."""

from typing import Any, List, get_args, get_origin

from .._codecs import SignatureCodec, decode_args


def _as_list(value: Any) -> List[Any]:
    """A return annotation (or value) as a list of its parts: ``Tuple[a, b]`` or ``(a, b)`` -> ``[a, b]``."""
    if value is None:
        return []
    if isinstance(value, tuple):
        return list(value)
    if get_origin(value) is tuple:
        return list(get_args(value))
    return [value]


__all__ = ["SignatureCodec", "decode_args"]

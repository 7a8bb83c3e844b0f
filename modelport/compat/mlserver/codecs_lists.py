"""`mlserver.codecs.lists`: a payload that is one string-like value or a list of them."""

from __future__ import annotations

from typing import Any, Iterator, List, Type, Union

ListElement = Union[bytes, str]
ListPayload = Union[ListElement, List[ListElement]]


def is_list_of(payload: Any, instance_type: Type) -> bool:
    """Whether ``payload`` is a list whose every element is an ``instance_type``."""
    return isinstance(payload, list) and all(isinstance(item, instance_type) for item in payload)


def as_list(payload: Any) -> Iterator[Any]:
    """The elements of a list, or a single value as a list of one."""
    if isinstance(payload, list):
        yield from payload
    else:
        yield payload


__all__ = ["ListElement", "ListPayload", "as_list", "is_list_of"]

"""V1 request bodies as KServe decodes them, CloudEvents included, and the matching responses.

KServe (``kserve.protocol.dataplane.DataPlane.decode/encode``):

- binary mode: the four ``ce-specversion/ce-id/ce-source/ce-type`` headers; the event's data is the
  body (JSON when it parses as JSON, else the raw bytes);
- structured mode: a JSON body with ``specversion, id, source, type, time, data``; the model gets ``data``;
- any other body whose content type is not JSON-ish reaches the model as raw bytes;
- the response goes back as a CloudEvent in the mode the request used (structured only when the
  request said ``content-type: application/cloudevents+json``), typed ``io.kserve.inference.response``
  from source ``io.kserve.inference.<model>`` (``CE_TYPE``/``CE_SOURCE``/``CE_MERGE`` env as in KServe).

The ``cloudevents`` SDK does the parsing and encoding; it is imported only when a request is an event.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from ..errors import InvalidInput
from . import v1_json
from .v2_json import dumps

JSON_CONTENT_TYPES = ("application/json", "application/cloudevents+json", "application/ld+json", "application/octet-stream")
STRUCTURED = "application/cloudevents+json"
# Decoded as JSON although KServe would hand them over as bytes: curl's default for -d, and no header.
_LENIENT = ("", "application/x-www-form-urlencoded")


# Both tests run on every V1 request: spelled out, not all() over a generator (a function object and a
# generator per call, ~1 µs of a request between them).
def is_structured_cloudevent(body: Any) -> bool:
    """True if a decoded JSON body looks like a structured CloudEvent (KServe's test, same keys)."""
    return (isinstance(body, dict) and "time" in body and "type" in body and "source" in body and "id" in body
            and "specversion" in body and "data" in body)


def has_binary_headers(headers: Any) -> bool:
    """True if the headers carry a binary-mode CloudEvent (the SDK's test)."""
    return "ce-specversion" in headers and "ce-source" in headers and "ce-type" in headers and "ce-id" in headers


class Event:
    """A request answered with an event: its mode (binary or structured) and its attributes."""

    __slots__ = ("binary", "attributes")

    def __init__(self, binary: bool, attributes: dict[str, Any]):
        self.binary = binary
        self.attributes = attributes


def _sdk():
    try:  # cloudevents 1.x, as KServe pins it
        from cloudevents import exceptions
        from cloudevents.conversion import to_binary, to_structured
        from cloudevents.http import CloudEvent, from_http
    except ImportError:  # cloudevents 2.x keeps the 1.x API under cloudevents.v1
        from cloudevents.v1 import exceptions
        from cloudevents.v1.conversion import to_binary, to_structured
        from cloudevents.v1.http import CloudEvent, from_http
    return exceptions, CloudEvent, from_http, to_binary, to_structured


def decode(body: bytes, headers: dict[str, str]) -> tuple[Any, Event | None]:
    """The payload the model gets, and the event to answer with (None: answer plain JSON)."""
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if has_binary_headers(headers):
        payload, event = _decode_binary(body, headers)
    elif content_type not in JSON_CONTENT_TYPES and content_type not in _LENIENT:
        return body, None  # e.g. an image posted as image/jpeg: the model gets the bytes
    else:
        payload, event = v1_json.loads(body), None
        attributes: dict[str, Any] = {}
        if is_structured_cloudevent(payload):
            attributes = dict(payload)
            payload = attributes.pop("data")
        if content_type == STRUCTURED:  # only then is the reply an event too (KServe's rule)
            event = Event(False, attributes)
    return payload, event


def _decode_binary(body: bytes, headers: dict[str, str]) -> tuple[Any, Event]:
    exceptions, _, from_http, _, _ = _sdk()
    try:
        # Without ce-contenttype the data stays bytes; decoded below as KServe does.
        ce = from_http(headers, body) if "ce-contenttype" in headers else from_http(headers, body, lambda x: x)
    except exceptions.GenericException as exc:
        raise InvalidInput(f"Cloud Event Exceptions: {exc}") from None
    data = ce.get_data()
    attributes = dict(ce.get_attributes())
    if isinstance(data, (bytes, bytearray)):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            if headers.get("content-type", "") in ("application/json", STRUCTURED):
                raise InvalidInput(f"Failed to decode or parse binary json cloudevent: {exc}") from None
    return data, Event(True, attributes)


def encode(model_name: str, result: Any, event: Event) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]]:
    """The response as a CloudEvent: body, content type, and the ce-* headers (binary mode)."""
    _, CloudEvent, _, to_binary, to_structured = _sdk()
    attributes: dict[str, Any] = {}
    if os.getenv("CE_MERGE", "false").lower() == "true":
        attributes = {k: v for k, v in event.attributes.items() if k not in ("id", "time")}
        if event.binary:
            attributes.pop("datacontenttype", None)
    attributes["type"] = os.getenv("CE_TYPE", "io.kserve.inference.response")
    attributes["source"] = os.getenv("CE_SOURCE", f"io.kserve.inference.{model_name}")
    # Plain JSON values (numpy arrays and scalars included) for the SDK's JSON encoder.
    data = orjson.loads(dumps(result)) if not isinstance(result, (bytes, str)) else result
    ce = CloudEvent(attributes, data)
    if event.binary:
        headers, body = to_binary(ce)
        content_type = b"application/json"
    else:
        headers, body = to_structured(ce)
        content_type = STRUCTURED.encode()
    extra = [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in headers.items() if k.lower() != "content-type"]
    return body if isinstance(body, bytes) else str(body).encode(), content_type, extra


__all__ = ["Event", "decode", "encode", "has_binary_headers", "is_structured_cloudevent"]

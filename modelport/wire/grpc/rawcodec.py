"""ModelInfer's raw tensor bytes kept as buffers through gRPC: no protobuf copies of the tensors.

protobuf's Python runtime copies a ``bytes`` field when it parses a message, again each time the field
is read, again when one is appended and again when the message is serialized. For ModelInfer the
server uses these (de)serializers instead (``transports/grpc/server.py`` registers them):

- ``parse_infer_request``: in a request of ``SCAN_FROM`` bytes or more, the ``raw_input_contents``
  (field 7) are cut out of the received message as memoryviews of gRPC's own buffer; the rest (names,
  shapes, parameters: small) is parsed by protobuf as usual. Anything unusual (no raw contents, a
  malformed message) is left to protobuf. A smaller request is protobuf's to parse at once: its copies
  cost less than the scan, and its typed contents are not read twice.
- ``RawInferResponse``: protobuf serializes everything but the raw outputs; each raw output follows
  as a field-6 entry written here. Concatenated protobuf messages parse as one (repeated fields
  append), so the result is the message protobuf itself would have written, up to field order.
"""

from __future__ import annotations

from typing import Any

from . import grpc_predict_v2_pb2 as pb

_RAW_INPUT_FIELD = 7  # ModelInferRequest.raw_input_contents
_RAW_OUTPUT_KEY = bytes([(6 << 3) | 2])  # ModelInferResponse.raw_output_contents, length-delimited


class _Malformed(Exception):
    pass


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The protobuf varint at ``data[pos]`` and the position after it."""
    result = shift = 0
    while True:
        byte = data[pos]  # IndexError past the end: malformed
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _Malformed()


def varint(n: int) -> bytes:
    """``n`` as a protobuf varint."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class RawInferRequest:
    """A ModelInferRequest whose ``raw_input_contents`` are memoryviews; every other field reads through."""

    __slots__ = ("message", "raw_input_contents")

    def __init__(self, message: pb.ModelInferRequest, raw_input_contents: list[memoryview]):
        self.message = message
        self.raw_input_contents = raw_input_contents

    def __getattr__(self, name: str) -> Any:
        return getattr(self.message, name)


# Below this size a request's tensor bytes cost less to copy than the scan for them costs.
SCAN_FROM = 32 * 1024


def parse_infer_request(data: bytes) -> pb.ModelInferRequest | RawInferRequest:
    """gRPC's request deserializer for ModelInfer."""
    if len(data) < SCAN_FROM:
        return pb.ModelInferRequest.FromString(data)
    return scan_infer_request(data)


def scan_infer_request(data: bytes) -> pb.ModelInferRequest | RawInferRequest:
    """The raw contents cut out as views, the rest parsed by protobuf (top-level fields only are
    scanned; a handful)."""
    view = memoryview(data)
    raws: list[memoryview] = []
    kept: list[memoryview] = []
    start = pos = 0
    end = len(data)
    try:
        while pos < end:
            field_start = pos
            key, pos = read_varint(data, pos)
            wire_type = key & 7
            if wire_type == 2:
                length, pos = read_varint(data, pos)
                if pos + length > end:
                    raise _Malformed()
                if key >> 3 == _RAW_INPUT_FIELD:
                    kept.append(view[start:field_start])
                    raws.append(view[pos : pos + length])
                    start = pos + length
                pos += length
            elif wire_type == 0:
                _, pos = read_varint(data, pos)
            elif wire_type == 1:
                pos += 8
            elif wire_type == 5:
                pos += 4
            else:
                raise _Malformed()
        if pos != end:
            raise _Malformed()
    except (_Malformed, IndexError):
        raws = []
    if not raws:
        return pb.ModelInferRequest.FromString(data)  # protobuf's own parse, and its own errors
    kept.append(view[start:])
    return RawInferRequest(pb.ModelInferRequest.FromString(b"".join(kept)), raws)


class RawInferResponse:
    """A ModelInferResponse without its raw outputs, and those outputs as buffers (memoryviews)."""

    __slots__ = ("message", "raw_output_contents")

    def __init__(self, message: pb.ModelInferResponse, raw_output_contents: list):
        self.message = message
        self.raw_output_contents = raw_output_contents

    def __getattr__(self, name: str) -> Any:
        return getattr(self.message, name)

    def SerializeToString(self) -> bytes:  # noqa: N802 - protobuf's name: one serializer serves both types
        parts = [self.message.SerializeToString()]
        for raw in self.raw_output_contents:
            parts.append(_RAW_OUTPUT_KEY + varint(len(raw)))
            parts.append(raw)
        return b"".join(parts)  # the one copy of each tensor on the way out

    def ByteSize(self) -> int:  # noqa: N802
        return self.message.ByteSize() + sum(1 + len(varint(len(r))) + len(r) for r in self.raw_output_contents)

    def to_message(self) -> pb.ModelInferResponse:
        """A plain protobuf message (copies the raw outputs in): for callers that need one."""
        return pb.ModelInferResponse.FromString(self.SerializeToString())


def serialize_infer_response(response: pb.ModelInferResponse | RawInferResponse) -> bytes:
    """gRPC's response serializer for ModelInfer."""
    return response.SerializeToString()


__all__ = ["SCAN_FROM", "RawInferRequest", "RawInferResponse", "parse_infer_request", "scan_infer_request",
           "serialize_infer_response"]

"""Input contracts: a JSON Schema for a model's V1 payload, and per-model size limits.

Checked before the model (and its batcher) sees the request: a payload that breaks the schema gets
400 naming the failing path; more rows than ``max_rows`` gets 400 naming the limit; a payload
larger than ``max_request_bytes`` gets 413. V2 tensors are measured without converting them:
rows are the first dimension, bytes are elements × item size (BYTES: the strings' lengths).
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from .._optional import import_optional
from ..errors import InvalidInput, PayloadTooLarge
from ..settings import SettingsError
from ..types import InferRequest, to_np_dtype


class Contract:
    def __init__(self, model: str, schema: Any = None, max_rows: int = 0, max_request_bytes: int = 0):
        self.model = model
        for key, value in (("max_rows", max_rows), ("max_request_bytes", max_request_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise SettingsError(f"Model {model}: {key} must be a whole number of 0 or more")
        self.max_rows = max_rows
        self.max_request_bytes = max_request_bytes
        self._validator = None
        if schema is not None:
            if not isinstance(schema, dict):
                raise SettingsError(f"Model {model}: input_schema must be a JSON Schema object")
            jsonschema = import_optional("jsonschema", extra="controls")
            cls = jsonschema.validators.validator_for(schema)
            try:
                cls.check_schema(schema)
            except jsonschema.SchemaError as exc:
                raise SettingsError(f"Model {model}: input_schema is not a valid JSON Schema: {exc.message}") from None
            self._validator = cls(schema)

    def check_v1(self, payload: Any, headers: dict | None) -> None:
        if self.max_request_bytes:
            length = (headers or {}).get("content-length")
            size = int(length) if length and length.isdigit() else len(orjson.dumps(payload))
            self._check_bytes(size)
        if self._validator is not None:
            errors = sorted(self._validator.iter_errors(payload), key=lambda e: (list(e.absolute_path), e.message))
            if errors:
                error = errors[0]
                raise InvalidInput(f"Request to model {self.model} does not match its input schema at {error.json_path}: {error.message}")
        if self.max_rows and isinstance(payload, dict):
            rows = payload.get("instances", payload.get("inputs"))
            if isinstance(rows, list):
                self._check_rows(len(rows))

    def check_v2(self, request: InferRequest) -> None:
        if self.max_rows:
            self._check_rows(max((t.shape[0] for t in request.inputs if t.shape), default=0))
        if self.max_request_bytes:
            self._check_bytes(sum(_tensor_bytes(t) for t in request.inputs))

    def _check_rows(self, rows: int) -> None:
        if rows > self.max_rows:
            raise InvalidInput(f"Request has {rows} rows; model {self.model} accepts at most {self.max_rows} (max_rows)")

    def _check_bytes(self, size: int) -> None:
        if size > self.max_request_bytes:
            raise PayloadTooLarge(
                f"Request of {size} bytes exceeds model {self.model}'s limit of {self.max_request_bytes} bytes (max_request_bytes)"
            )


def _tensor_bytes(tensor: Any) -> int:
    if tensor.datatype == "BYTES":
        return sum(len(v) if isinstance(v, (bytes, str)) else 8 for v in tensor.as_numpy().ravel())
    try:
        return math.prod(tensor.shape) * to_np_dtype(tensor.datatype).itemsize
    except Exception:  # noqa: BLE001 - an unknown datatype is the data plane's to report
        return 0


__all__ = ["Contract"]

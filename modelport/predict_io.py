"""Helpers so that one ``predict`` serves V1 dicts and V2 InferRequests alike (as in KServe's SDK)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np

from .errors import InvalidInput
from .wire import jsonable
from .types import InferOutput, InferRequest, InferResponse, _array_from_json, check_shape, from_np_dtype, output_of


def get_predict_input(payload: dict | InferRequest, columns: list[str] | None = None, *, dtype: Any = None) -> Any:
    """The model input as a numpy array, or a pandas DataFrame for V2 content type "pd" or V1 dict rows.

    ``dtype`` (e.g. ``np.float64``) is what a numeric model expects: V1 ``instances`` are then read
    with the V2 JSON rules for that datatype, so ``true``/``false`` or text where numbers belong are
    refused (400) rather than quietly turned into 0/1. V2 tensors are already typed by the request."""
    if isinstance(payload, InferRequest):
        if payload.parameters.get("content_type") == "pd":
            return payload.as_dataframe()
        if not payload.inputs:
            raise InvalidInput("The request has no inputs")
        return payload.inputs[0].as_numpy()
    if isinstance(payload, dict):
        instances = payload.get("inputs", payload.get("instances"))
        if not isinstance(instances, list):
            raise InvalidInput('Expected "instances" (or "inputs") to be a list')
        if instances and isinstance(instances[0], dict):
            from ._optional import import_optional

            pd = import_optional("pandas", extra="pandas")
            return pd.DataFrame(instances, columns=columns)
        try:
            array = np.asarray(instances)
        except ValueError as exc:
            raise InvalidInput(f"instances do not form a rectangular array: {exc}") from None
        if dtype is None:
            return array
        datatype = from_np_dtype(np.dtype(dtype))
        # The V2 JSON rules for that datatype, on the array just made (not converted a second time).
        return _array_from_json("instances", datatype, check_shape("instances", list(array.shape)), instances, array)
    raise InvalidInput(f"Unsupported payload type {type(payload).__name__}")


def get_predict_response(payload: dict | InferRequest, result: Any, model_name: str) -> dict | InferResponse:
    """Wrap a prediction (array, list or DataFrame) in the response type the request's protocol expects."""
    if isinstance(payload, InferRequest):
        return InferResponse(
            response_id=payload.id,  # echoed when the request has one (the protocol's rule)
            model_name=model_name,
            infer_outputs=outputs_from_result(result),
            model_version=payload.model_version,
        )
    if hasattr(result, "to_dict") and hasattr(result, "columns"):  # a DataFrame
        result = result.to_dict(orient="records")
    elif isinstance(result, np.ndarray):
        result = jsonable.default(result)  # tolist(), with numpy datetimes as ISO 8601 text
    return {"predictions": result}


def outputs_from_result(result: Any) -> list[InferOutput]:
    """InferOutputs from what a predict returned: an array, a list of arrays, a dict, or a DataFrame
    (a Series, a set, Decimals and numpy datetimes too: see :func:`_as_array`)."""
    if type(result) is np.ndarray:  # the common case first: hasattr() misses cost an exception each
        return [_output("output-0", result)]
    if hasattr(result, "columns") and hasattr(result, "iloc"):  # a DataFrame: one output per column
        return [_output(str(col), result[col].to_numpy()) for col in result.columns]
    if isinstance(result, dict):
        return [_output(str(name), _as_array(value)) for name, value in result.items()]
    if isinstance(result, (list, tuple)) and result and all(isinstance(r, np.ndarray) for r in result):
        return [_output(f"output-{i}", r) for i, r in enumerate(result)]
    return [_output("output-0", _as_array(result))]


def _as_array(value: Any) -> np.ndarray:
    """A tensor's values as numpy, for the Python results a V2 tensor has no type for: a pandas
    Series or Index (its values), a set (sorted when it sorts), Decimals (FP64), bytes (one BYTES
    item), numpy datetimes (ISO 8601 text, as BYTES)."""
    if isinstance(value, np.ndarray):
        array = value
    elif isinstance(value, (set, frozenset)):
        array = np.asarray(jsonable.default(value))
    elif isinstance(value, (bytes, bytearray)):
        array = np.array([bytes(value)], dtype=object)
    elif hasattr(value, "to_numpy") and hasattr(value, "dtype"):  # a pandas Series or Index
        array = value.to_numpy()
    else:
        array = np.asarray(value)
    if array.dtype.kind == "O" and array.size and isinstance(array.flat[0], Decimal):
        try:
            return array.astype(np.float64)
        except (TypeError, ValueError):  # mixed with non-numbers: sent as text
            return array.astype(str).astype(object)
    return array


def _output(name: str, array: np.ndarray) -> InferOutput:
    if array.dtype.kind == "M":  # numpy datetimes: ISO 8601 text (NaT: empty), as BYTES
        array = np.where(np.isnat(array), "", np.datetime_as_string(array)).astype(object)
    return output_of(name, array)  # text and objects are BYTES

"""ONNX models (``*.onnx``) run with onnxruntime.

The graph's inputs and outputs are the model's V2 metadata (names, datatypes, shapes with -1 for
dynamic dimensions), so the data plane checks V2 requests against them. V2 inputs are matched by
name; a V1 request's ``instances`` go to the graph's single input (a graph with several inputs takes
``{"inputs": {"name": [...], ...}}`` or instances that are objects keyed by input name). Outputs keep
the graph's names; a V2 request that names outputs runs only those. A sequence-of-maps output (as
skl2onnx's ZipMap writes for class probabilities) is returned as a [rows, classes] tensor in key order.

Settings (``parameters.extra``): ``providers``: onnxruntime execution providers, in order (default:
CUDA when onnxruntime has it, then CPU); ``intra_op_num_threads``, ``inter_op_num_threads``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .._optional import import_optional
from ..errors import InvalidInput
from ..model import Model
from ..settings import SettingsError
from ..types import InferRequest, to_np_dtype
from ._common import (
    ModelLoadError,
    as_dtype,
    check_rank,
    declare,
    extra,
    framework_error,
    model_path,
    requested_names,
    respond,
    set_platform,
    strings,
)

# onnxruntime element types -> Open Inference Protocol datatypes.
_DATATYPES = {
    "float": "FP32",
    "double": "FP64",
    "float16": "FP16",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "bool": "BOOL",
    "string": "BYTES",
}
_TENSOR = re.compile(r"^tensor\((\w+)\)$")
_SEQ_MAP = re.compile(r"^seq\(map\((\w+),\s*tensor\((\w+)\)\)\)$")


def _dims(shape: Any) -> list[int]:
    return [d if isinstance(d, int) and d >= 0 else -1 for d in (shape or [])]


class ONNXModel(Model):
    """Serves an ONNX graph with an onnxruntime InferenceSession."""

    # One input is taken under any name, as KServe's and MLServer's servers do; metadata keeps the declared one.
    single_input_any_name = True

    def load(self) -> bool:
        ort = import_optional("onnxruntime", extra="onnx")
        options = extra(self)
        path = model_path(self, "onnx")
        session_options = ort.SessionOptions()
        for key in ("intra_op_num_threads", "inter_op_num_threads"):
            if key in options:
                setattr(session_options, key, int(options[key]))
        available = ort.get_available_providers()
        providers = options.get("providers") or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        unknown = [p for p in providers if p not in available]
        if unknown:
            raise SettingsError(
                f"Model {self.name}: onnxruntime has no provider {', '.join(unknown)}; available: {', '.join(available)}"
            )
        # onnxruntime's own exception classes share no base class but Exception: collect them once.
        state = ort.capi.onnxruntime_pybind11_state
        self._errors = (ValueError, TypeError, RuntimeError) + tuple(
            v for v in vars(state).values() if isinstance(v, type) and issubclass(v, Exception)
        )
        try:
            self._session = ort.InferenceSession(str(path), session_options, providers=providers)
        except self._errors as exc:
            raise ModelLoadError(f"Cannot load ONNX model {path}: {exc}") from exc
        self._inputs = [self._meta(arg, "input") for arg in self._session.get_inputs()]
        self._outputs = [self._meta(arg, "output") for arg in self._session.get_outputs()]
        self._output_dtypes = {o["name"]: to_np_dtype(o["datatype"]) if o["datatype"] else None for o in self._outputs}
        declare(
            self,
            [m for m in self._inputs if m["datatype"]],
            [m for m in self._outputs if m["datatype"]],
        )
        set_platform(self, "onnxruntime_onnx")
        self.ready = True
        return self.ready

    def _meta(self, arg: Any, what: str) -> dict[str, Any]:
        """V2 metadata for a graph input or output; datatype "" when it has no V2 equivalent."""
        tensor = _TENSOR.match(arg.type)
        if tensor:
            return {"name": arg.name, "datatype": _DATATYPES.get(tensor.group(1), ""), "shape": _dims(arg.shape)}
        seq_map = _SEQ_MAP.match(arg.type)
        if seq_map and what == "output":
            return {"name": arg.name, "datatype": _DATATYPES.get(seq_map.group(2), ""), "shape": [-1, -1]}
        return {"name": arg.name, "datatype": "", "shape": []}

    # -- inference -----------------------------------------------------------------------------
    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        feed = self._feed(payload)
        wanted = requested_names(payload)
        names = [n for n in self._output_dtypes if n in wanted] if wanted else list(self._output_dtypes)
        try:
            results = self._session.run(names, feed)
        except self._errors as exc:
            raise framework_error(self, exc) from exc
        return respond(self, payload, {n: _to_array(value, self._output_dtypes[n]) for n, value in zip(names, results)})

    def _feed(self, payload: Any) -> dict[str, np.ndarray]:
        graph = self._inputs
        if isinstance(payload, InferRequest):
            arrays = {}
            for meta in graph:
                tensor = payload.get_input_by_name(meta["name"])
                if tensor is None:
                    raise InvalidInput(
                        f"Model {self.name} needs input {meta['name']!r}; the request has "
                        f"{', '.join(repr(n) for n in payload.input_names()) or 'none'}"
                    )
                arrays[meta["name"]] = tensor.as_numpy()
        else:
            arrays = self._v1_arrays(payload)
        return {meta["name"]: self._prepare(meta, arrays[meta["name"]]) for meta in graph}

    def _v1_arrays(self, payload: dict) -> dict[str, np.ndarray]:
        graph_names = [m["name"] for m in self._inputs]
        inputs = payload.get("inputs")
        if isinstance(inputs, dict):  # {"inputs": {"name": [...], ...}}
            missing = [n for n in graph_names if n not in inputs]
            if missing:
                raise InvalidInput(f"Model {self.name} needs input(s) {', '.join(map(repr, missing))}")
            return {n: _rectangular(n, inputs[n]) for n in graph_names}
        instances = payload.get("instances", inputs)
        if instances and all(isinstance(row, dict) for row in instances):  # one object per row, keyed by input
            missing = [n for n in graph_names if any(n not in row for row in instances)]
            if missing:
                raise InvalidInput(f"Model {self.name} needs input(s) {', '.join(map(repr, missing))} in every instance")
            return {n: _rectangular(n, [row[n] for row in instances]) for n in graph_names}
        if len(graph_names) != 1:
            raise InvalidInput(
                f"Model {self.name} has {len(graph_names)} inputs ({', '.join(graph_names)}): send "
                "{\"inputs\": {name: values}} or instances that are objects keyed by input name"
            )
        return {graph_names[0]: _rectangular(graph_names[0], instances)}

    def _prepare(self, meta: dict[str, Any], array: np.ndarray) -> np.ndarray:
        name, datatype = meta["name"], meta["datatype"]
        check_rank(name, array, meta["shape"])
        if datatype == "BYTES":
            return np.array(strings(name, array), dtype=object).reshape(array.shape)
        if datatype:
            return as_dtype(name, array, to_np_dtype(datatype))
        return array


def _rectangular(name: str, values: Any) -> np.ndarray:
    try:
        array = np.asarray(values)
    except ValueError as exc:
        raise InvalidInput(f"Input {name!r}: instances do not form a rectangular array: {exc}") from None
    if array.dtype.kind == "U":
        array = array.astype(object)
    return array


def _to_array(value: Any, dtype: np.dtype | None) -> np.ndarray:
    """An output as an array; a sequence of maps (ZipMap) becomes [rows, keys] in key order."""
    if isinstance(value, list) and (not value or isinstance(value[0], dict)):
        keys = sorted(value[0]) if value else []
        return np.array([[row[k] for k in keys] for row in value], dtype=dtype).reshape(len(value), len(keys))
    return np.asarray(value)

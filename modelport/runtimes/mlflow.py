"""MLflow models: a folder holding an ``MLmodel`` file, served through its ``python_function`` flavour.

Any model saved with ``mlflow.<flavor>.save_model`` (or ``log_model``, then downloaded) has that
flavour; loading it runs the flavour's loader, which unpickles code for most flavours: serve only
models you trust. Needs ``pip install 'modelport[mlflow]'`` (mlflow-skinny, which loads pyfunc
models; the model's own framework, e.g. scikit-learn, must be installed too).

* V2 metadata comes from the model's signature: a column-based signature is one input per column
  (shape [-1], the column's datatype), a tensor-based one is one input per tensor. A V2 request
  becomes what MLflow's scoring server would pass: a DataFrame for columns (or content type "pd"),
  an array (one tensor) or a dict of arrays (several).
* A V1 request (``/v1/models/{m}:predict``) is read as MLflow's scoring server reads a JSON body:
  ``instances``, ``inputs``, ``dataframe_split`` or ``dataframe_records`` (and ``params``).
* MLflow's own scoring protocol (``POST /invocations``, ``GET /ping``) is served by
  :mod:`modelport.transports.rest.mlflow_scoring`, which calls :meth:`MLflowModel.invocations`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import import_optional
from ..errors import InvalidInput
from ..model import Model
from ..types import InferRequest, from_np_dtype
from ._common import ModelLoadError, declare, model_path, set_platform, wants_dataframe

MLMODEL = "MLmodel"

# MLflow column types -> Open Inference Protocol datatypes (as MLServer's MLflow runtime maps them).
_COLUMN_DATATYPES = {
    "boolean": "BOOL",
    "integer": "INT32",
    "long": "INT64",
    "float": "FP32",
    "double": "FP64",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
}


def is_mlflow_folder(folder: Path) -> bool:
    return (folder / MLMODEL).is_file()


class MLflowModel(Model):
    """Serves an MLflow model folder with ``mlflow.pyfunc.load_model``."""

    # One input is taken under any name (a model with one unnamed tensor), as the other runtimes do.
    single_input_any_name = True

    def load(self) -> bool:
        pyfunc = import_optional("mlflow.pyfunc", extra="mlflow")
        folder = model_path(self, "mlflow")
        if not is_mlflow_folder(folder):
            raise ModelLoadError(f"{folder} holds no {MLMODEL} file: it is not an MLflow model folder")
        try:
            self._pyfunc = pyfunc.load_model(str(folder))
        except Exception as exc:  # a missing flavour, a missing framework, a broken pickle...
            raise ModelLoadError(f"Cannot load MLflow model {folder.name}: {type(exc).__name__}: {exc}") from exc
        from mlflow.exceptions import MlflowException
        from mlflow.pyfunc import scoring_server

        self._mlflow_error = MlflowException
        self._scoring = scoring_server
        metadata = self._pyfunc.metadata
        self._input_schema = metadata.get_input_schema()
        self._columns = self._input_schema is not None and not self._input_schema.is_tensor_spec()
        declare(self, _inputs(self._input_schema), _outputs(metadata.get_output_schema()))
        flavors = [f for f in metadata.flavors if f != "python_function"]
        set_platform(self, "mlflow_" + flavors[0] if flavors else "mlflow_pyfunc")
        self.ready = True
        return self.ready

    # -- V1 and V2 ---------------------------------------------------------------------------------
    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, InferRequest):
            result = self._predict(self._v2_input(payload))
            from ..predict_io import get_predict_response

            response = get_predict_response(payload, result, self.name)
            if len(response.outputs) == 1 and self.outputs and len(self.outputs) == 1:
                response.outputs[0]._name = self.outputs[0]["name"]  # one output: the signature's name for it
            return response
        if not isinstance(payload, dict):
            raise InvalidInput(
                f"Model {self.name} (MLflow) takes a JSON object with one of instances, inputs, dataframe_split or "
                f"dataframe_records; got {type(payload).__name__}"
            )
        try:
            parsed = self._scoring._parse_json_data(payload, self._pyfunc.metadata, self._input_schema)
        except self._mlflow_error as exc:
            raise InvalidInput(exc.message) from None
        result = self._predict(parsed.data, parsed.params)
        return {"predictions": self._scoring._get_jsonable_obj(result, pandas_orient="records")}

    def _predict(self, data: Any, params: dict | None = None) -> Any:
        try:
            return self._pyfunc.predict(data, params=params) if params else self._pyfunc.predict(data)
        except self._mlflow_error as exc:  # MLflow's schema enforcement and its own input errors
            if exc.get_http_status_code() >= 500:
                raise
            raise InvalidInput(f"Model {self.name} cannot predict on this input: {exc.message}") from None
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise InvalidInput(f"Model {self.name} cannot predict on this input: {exc}") from None

    def _v2_input(self, request: InferRequest) -> Any:
        if not request.inputs:
            raise InvalidInput("The request has no inputs")
        if self._columns or wants_dataframe(self, request):
            return request.as_dataframe()
        arrays = {t.name: t.as_numpy() for t in request.inputs}
        if len(arrays) == 1 and (self._input_schema is None or not self._input_schema.has_input_names()):
            return next(iter(arrays.values()))
        return arrays

    # -- MLflow's scoring protocol (POST /invocations) ------------------------------------------------
    def invocations(self, body: bytes, content_type: str) -> tuple[int, bytes, str]:
        """Status, body and content type as MLflow's scoring server answers ``body`` (its own code
        parses the input and writes the predictions). An MLflow error becomes its JSON body
        (``error_code``, ``message``) plus modelport's ``error``; its stack trace stays in the log."""
        try:
            answer = self._scoring.invocations(body, content_type, self._pyfunc, self._input_schema)
        except self._mlflow_error as exc:
            doc = {"error": exc.message, "error_code": exc.error_code, "message": exc.message}
            for key in ("sqlstate", "error_class"):
                if getattr(exc, key, None) is not None:
                    doc[key] = getattr(exc, key)
            return exc.get_http_status_code(), json.dumps(doc).encode(), "application/json"
        if answer.mimetype != "application/json":  # 415s: MLflow's text, in modelport's JSON error body
            return answer.status, json.dumps({"error": answer.response}).encode(), "application/json"
        return answer.status, answer.response.encode(), answer.mimetype


# -- signature -> V2 metadata ------------------------------------------------------------------------
def _inputs(schema: Any) -> list[dict[str, Any]] | None:
    if schema is None:
        return None
    if schema.is_tensor_spec():
        return [_tensor(spec, f"input-{i}") for i, spec in enumerate(schema.inputs)]
    inputs = []
    for i, col in enumerate(schema.inputs):
        meta: dict[str, Any] = {"name": col.name if col.name is not None else str(i), "shape": [-1]}
        datatype = _COLUMN_DATATYPES.get(getattr(col.type, "name", None))
        if datatype is not None:
            meta["datatype"] = datatype
        if not getattr(col, "required", True):
            meta["optional"] = True
        inputs.append(meta)
    return inputs


def _outputs(schema: Any) -> list[dict[str, Any]] | None:
    if schema is None:
        return None
    if schema.is_tensor_spec():
        return [_tensor(spec, f"output-{i}") for i, spec in enumerate(schema.inputs)]
    outputs = []
    for i, col in enumerate(schema.inputs):
        meta: dict[str, Any] = {"name": col.name if col.name is not None else f"output-{i}", "shape": [-1]}
        datatype = _COLUMN_DATATYPES.get(getattr(col.type, "name", None))
        if datatype is not None:
            meta["datatype"] = datatype
        outputs.append(meta)
    return outputs


def _tensor(spec: Any, default_name: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": spec.name or default_name, "shape": [int(d) for d in spec.shape]}
    try:
        meta["datatype"] = from_np_dtype(np.dtype(spec.type))
    except (InvalidInput, TypeError):
        meta["datatype"] = "BYTES"  # object/str tensors
    return meta

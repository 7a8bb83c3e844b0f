"""What the built-in runtimes share: finding the model's file, reading requests, shaping responses.

Nothing here imports a framework; each runtime module imports its own, lazily, in ``load``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ErrorCode, InvalidInput, ModelportError
from ..predict_io import get_predict_input, get_predict_response
from ..types import InferRequest, from_np_dtype
from . import find_model_file

if TYPE_CHECKING:
    from ..model import Model
from ..settings import SettingsError

logger = logging.getLogger("modelport")


class ModelLoadError(ModelportError):
    """A model's file exists but its framework cannot load it (the message names the file)."""

    code = ErrorCode.INTERNAL


def extra(model: Model) -> dict[str, Any]:
    """``parameters.extra`` from the model's settings (empty when the model has no settings)."""
    settings = model.settings
    return dict(settings.parameters.extra or {}) if settings is not None else {}


PREDICT = "predict"
PREDICT_PROBA = "predict_proba"
METHODS = (PREDICT, PREDICT_PROBA)


def prediction_method(model: Model) -> str:
    """``parameters.extra.method`` of an estimator runtime: "predict" (default) or "predict_proba"."""
    method = extra(model).get("method", PREDICT)
    if method not in METHODS:
        raise SettingsError(f"Model {model.name}: parameters.extra.method must be one of {', '.join(METHODS)}, got {method!r}")
    return method


def model_path(model: Model, runtime: str) -> Path:
    """The local file (a folder for huggingface) that ``model`` loads: its URI fetched, then searched.

    The URI is ``parameters.uri`` (relative to the settings folder), else the settings folder itself.
    """
    settings = model.settings
    uri = settings.uri if settings is not None else None
    if not uri and settings is not None:
        uri = settings.folder
    if not uri:
        raise ModelLoadError(
            f"Model {model.name} has no parameters.uri: say where its {runtime} model file is in model-settings.json"
        )
    from ..storage import fetch

    path = fetch(uri, version=settings.version)
    return find_model_file(path, runtime)


def set_platform(model: Model, platform: str) -> None:
    if not model.platform:
        model.platform = platform


def declare(model: Model, inputs: list[dict] | None, outputs: list[dict] | None) -> None:
    """Tensor metadata found in the model file; metadata from model-settings.json wins."""
    if inputs and not model.inputs:
        model.inputs = inputs
    if outputs and not model.outputs:
        model.outputs = outputs


def tensor_meta(name: str, dtype: Any, shape: list[int]) -> dict[str, Any]:
    return {"name": name, "datatype": from_np_dtype(np.dtype(dtype)), "shape": list(shape)}


def wants_dataframe(model: Model, payload: Any) -> bool:
    """V2 content type "pd" on the request, or as the model's default content type."""
    if isinstance(payload, InferRequest):
        requested = payload.parameters.get("content_type")
        if requested is not None:
            return requested == "pd"
    settings = model.settings
    return settings is not None and settings.parameters.content_type == "pd"


def tabular_input(model: Model, payload: Any) -> Any:
    """A 2-D numpy array, or a pandas DataFrame (V2 content type "pd", V1 rows given as objects)."""
    if isinstance(payload, InferRequest):
        if wants_dataframe(model, payload):
            if not payload.inputs:
                raise InvalidInput("The request has no inputs")
            return payload.as_dataframe()
        if len(payload.inputs) != 1:
            names = ", ".join(repr(t.name) for t in payload.inputs) or "none"
            raise InvalidInput(
                f"Model {model.name} takes one input tensor of shape [rows, features], got {len(payload.inputs)} "
                f"({names}); to send one tensor per column set the request's parameters.content_type to \"pd\""
            )
        return payload.inputs[0].as_numpy()
    return get_predict_input(payload)


def requested_names(payload: Any) -> set[str]:
    if isinstance(payload, InferRequest) and payload.request_outputs:
        return {o.name for o in payload.request_outputs}
    return set()


def respond(model: Model, payload: Any, outputs: dict[str, Any]) -> Any:
    """The response for ``payload``'s protocol: an InferResponse with one named output per entry for
    V2; ``{"predictions": ...}`` for V1 (one output: its values; several: one object per row)."""
    if isinstance(payload, InferRequest):
        return get_predict_response(payload, outputs, model.name)
    if len(outputs) == 1:  # the usual answer: one output's values
        (value,) = outputs.values()
        return {"predictions": _plain(np.asarray(value))}
    arrays = {name: np.asarray(value) for name, value in outputs.items()}
    lengths = {a.shape[0] if a.ndim else None for a in arrays.values()}
    if len(lengths) == 1 and None not in lengths:
        columns = {name: _plain(a) for name, a in arrays.items()}
        rows = lengths.pop()
        return {"predictions": [{name: col[i] for name, col in columns.items()} for i in range(rows)]}
    return {"predictions": {name: _plain(a) for name, a in arrays.items()}}


def _plain(array: np.ndarray) -> Any:
    if array.dtype.kind in "OS":
        flat = [v.decode() if isinstance(v, bytes) else v for v in array.ravel().tolist()]
        return np.array(flat, dtype=object).reshape(array.shape).tolist()
    return array.tolist()


def as_dtype(name: str, array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``array`` as ``dtype`` when that keeps its meaning (ints to floats, narrower floats, ...)."""
    dtype = np.dtype(dtype)
    if array.dtype == dtype:
        return array
    have, want = array.dtype.kind, dtype.kind
    if (want == "f" and have in "fiub") or (want in "iu" and have in "iub") or (want == "b" and have == "b"):
        return array.astype(dtype)
    raise InvalidInput(
        f"Input {name!r}: expected {from_np_dtype(dtype)} values, got {_describe(array.dtype)}"
    )


def _describe(dtype: np.dtype) -> str:
    try:
        return from_np_dtype(dtype)
    except InvalidInput:
        return str(dtype)


def check_rank(name: str, array: np.ndarray, shape: list[int] | None) -> None:
    """Refuse an array whose rank or fixed dimensions differ from declared metadata (-1: any size)."""
    if not shape:
        return
    if array.ndim != len(shape) or any(d != -1 and d != a for a, d in zip(array.shape, shape)):
        raise InvalidInput(f"Input {name!r} has shape {list(array.shape)}, model expects {list(shape)}")


def strings(name: str, array: np.ndarray) -> list[str]:
    """A flat list of str from a BYTES/str array, or InvalidInput."""
    out = []
    for value in array.ravel().tolist():
        if isinstance(value, bytes):
            try:
                value = value.decode()
            except UnicodeDecodeError:
                raise InvalidInput(f"Input {name!r} is not valid UTF-8 text") from None
        if not isinstance(value, str):
            raise InvalidInput(f"Input {name!r} must hold text, got {type(value).__name__}")
        out.append(value)
    return out


def framework_error(model: Model, exc: BaseException, message: str | None = None) -> InvalidInput:
    """The framework's own message (or ``message``), as the client's error."""
    message = message or str(exc).strip() or type(exc).__name__
    return InvalidInput(f"Model {model.name} cannot predict on this input: {message}")


def checked_fast_path(framework: str, reference: str, make: Any, agrees: Any) -> Any:
    """A runtime's fast-path predictor (``make()``), or None when it cannot be built with this version
    of the framework or its answers on probe rows differ from ``reference`` (``agrees(predictor)``):
    the runtime then takes the framework's own path, so the answers never change."""
    log = logging.getLogger("modelport")
    try:
        predictor = make()
        same = agrees(predictor)
    except Exception as exc:  # noqa: BLE001 - a framework without the internals used: no fast path, same answers
        log.info("%s fast path off for this model: %s: %s", framework, type(exc).__name__, exc)
        return None
    if not same:
        log.warning("%s fast path off for this model: its answers differ from %s on probe rows", framework, reference)
        return None
    return predictor

"""XGBoost models saved with ``save_model`` (``.json``, ``.ubj``, ``.bst``), Booster or scikit-learn API.

A file saved from ``XGBClassifier``/``XGBRegressor``/``XGBRanker`` is loaded back into that class (its
``predict`` gives class labels, and ``predict_proba`` is available); a plain Booster's ``predict`` gives
what its objective outputs (probabilities for ``multi:softprob``, margins, values).

Settings (``parameters.extra``): ``method``: ``"predict"`` (default) or ``"predict_proba"``; a V2
request may ask for either output by name. ``nthread``: XGBoost's threads per prediction (default 1:
a server already predicts for several requests at once, and XGBoost's OpenMP pool on a busy machine
turns a 50 µs prediction into milliseconds; 0: XGBoost's default, every core). Inputs as for the
sklearn runtime: V1 rows, one V2 tensor [rows, features], or one tensor per column with content type
``"pd"``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from .._optional import import_optional
from ..errors import InvalidInput
from ..model import Model
from ..settings import SettingsError
from ._common import (
    METHODS,
    PREDICT,
    PREDICT_PROBA,
    ModelLoadError,
    declare,
    extra,
    framework_error,
    model_path,
    prediction_method,
    requested_names,
    respond,
    set_platform,
    tabular_input,
    tensor_meta,
)
from ._xgboost_dense import DensePredictor

logger = logging.getLogger("modelport")
DEFAULT_NTHREAD = 1
# predict_inline answers on the event loop when rows × trees walked is at most this: the C call's
# ~45 µs fixed cost plus a few ns per tree walk, well under 100 µs (more goes to a hook thread).
INLINE_WALKS = 4096


class XGBoostModel(Model):
    """Serves an XGBoost model file."""

    # One input is taken under any name, as KServe's and MLServer's servers do; metadata keeps the declared one.
    single_input_any_name = True

    def load(self) -> bool:
        xgb = import_optional("xgboost", extra="xgboost")
        self._method = method = prediction_method(self)
        nthread = _nthread(self)
        path = model_path(self, "xgboost")
        try:
            # Loaded from bytes: xgboost then tells JSON from UBJSON by content, not by extension (it
            # warns about names such as .bst otherwise).
            raw = bytearray(path.read_bytes())
            booster = xgb.Booster(model_file=raw)
            kind = _estimator_type(booster)
            estimator_class = {"classifier": xgb.XGBClassifier, "regressor": xgb.XGBRegressor, "ranker": xgb.XGBRanker}.get(kind)
            if estimator_class is not None:
                self._model = estimator_class()
                self._model.load_model(raw)
                booster = self._model.get_booster()  # the estimator's own: one thread setting, one model in memory
            else:
                self._model = booster
            booster.set_param({"nthread": nthread})
        except (OSError, xgb.core.XGBoostError) as exc:
            raise ModelLoadError(f"Cannot load XGBoost model {path}: {_message(exc)}") from exc
        self._xgb = xgb
        self._booster = booster
        if method == PREDICT_PROBA and not hasattr(self._model, PREDICT_PROBA):
            raise ModelLoadError(f"{path} is an XGBoost {kind or 'Booster'}, which has no predict_proba; use method \"predict\"")
        self._fast = DensePredictor.build(xgb, self._model, booster)
        self._inline_rows = INLINE_WALKS // max(1, self._fast.trees) if self._fast is not None else 0
        declare(self, None, self._output_metadata(kind))
        set_platform(self, "xgboost")
        self.ready = True
        return self.ready

    def _output_metadata(self, kind: str | None) -> list[dict[str, Any]]:
        if kind == "classifier":
            return [
                tensor_meta(PREDICT, np.int64, [-1]),
                tensor_meta(PREDICT_PROBA, np.float32, [-1, int(self._model.n_classes_)]),
            ]
        if kind in ("regressor", "ranker"):
            return [tensor_meta(PREDICT, np.float32, [-1])]
        return []

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        X = tabular_input(self, payload)
        if isinstance(X, np.ndarray) and X.ndim != 2:
            raise InvalidInput(f"Model {self.name} expects rows of features (shape [rows, features]), got shape {list(X.shape)}")
        wanted = requested_names(payload) & set(METHODS) or {self._method}
        try:
            outputs = self._fast.outputs(X, wanted) if self._fast is not None else None
            if outputs is None:
                outputs = self._checked_outputs(X, wanted)
        except (ValueError, TypeError, KeyError, self._xgb.core.XGBoostError) as exc:
            raise framework_error(self, exc, _message(exc)) from exc
        return respond(self, payload, outputs)

    def predict_inline(self, payload: Any) -> Any:
        """predict on the event loop when the fast path answers a few rows of a small model (tens of
        µs: rows × trees at most INLINE_WALKS); NotImplemented otherwise: the runner uses a thread."""
        if not self._inline_rows:
            return NotImplemented
        X = tabular_input(self, payload)
        if type(X) is not np.ndarray or X.ndim != 2 or X.shape[0] > self._inline_rows:
            return NotImplemented
        wanted = requested_names(payload) & set(METHODS) or {self._method}
        try:
            outputs = self._fast.outputs(X, wanted)
        except (ValueError, TypeError, KeyError, self._xgb.core.XGBoostError) as exc:
            raise framework_error(self, exc, _message(exc)) from exc
        return NotImplemented if outputs is None else respond(self, payload, outputs)

    def _checked_outputs(self, X: Any, wanted: set[str]) -> dict[str, Any]:
        """XGBoost's own Python API: DataFrames, other dtypes, and whatever the fast path declines."""
        outputs = {}
        for method in METHODS:
            if method not in wanted:
                continue
            if isinstance(self._model, self._xgb.Booster):
                if method != PREDICT:
                    raise InvalidInput(f"Model {self.name} is a plain XGBoost Booster: it has only the predict output")
                outputs[method] = self._model.inplace_predict(X)
            else:
                if not hasattr(self._model, method):
                    raise InvalidInput(f"Model {self.name} ({type(self._model).__name__}) has no {method} output")
                outputs[method] = getattr(self._model, method)(X)
        return outputs


def _nthread(model: Model) -> int:
    value = extra(model).get("nthread", DEFAULT_NTHREAD)
    if type(value) is not int or value < 0:
        raise SettingsError(f"Model {model.name}: parameters.extra.nthread must be a whole number >= 0 (0: every core), got {value!r}")
    return value


def _message(exc: BaseException) -> str:
    """XGBoost's message without the native stack trace it appends."""
    return str(exc).split("Stack trace:", 1)[0].strip() or type(exc).__name__


def _estimator_type(booster: Any) -> str | None:
    """"classifier", "regressor" or "ranker" for a file saved from the scikit-learn API, else None."""
    meta = booster.attr("scikit_learn")
    if not meta:
        return None
    try:
        return json.loads(meta).get("_estimator_type")
    except (ValueError, AttributeError):
        return None

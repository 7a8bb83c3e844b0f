"""LightGBM Boosters saved as text (``model.txt``, from ``Booster.save_model`` or ``booster_.save_model``).

The output, named ``predict``, is the Booster's ``predict``: probabilities for binary (shape [rows])
and multiclass (shape [rows, classes]) objectives, values for regression. Inputs as for the sklearn
runtime: V1 rows, one V2 tensor [rows, features], or one tensor per column with content type "pd".

A dense float array of the model's width goes straight to the C prediction ``Booster.predict`` makes
for it (``LGBM_BoosterPredictForMat``, no Dataset) without its ~10 µs of per-call Python
(``_lightgbm_dense.py``); one row goes through LightGBM's single-row API
(``LGBM_BoosterPredictForMatSingleRowFast``, its parameters parsed once at load); other inputs take
``Booster.predict``. ``parameters.extra.num_threads``:
LightGBM's threads per prediction (default 1: a server already predicts for several requests at once,
and LightGBM's OpenMP pool on a busy machine turned a ~20 µs one-row prediction into 0.35-0.5 ms;
0: LightGBM's default, every core).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._optional import import_optional
from ..errors import InvalidInput
from ..model import Model
from ..settings import SettingsError
from ._common import (
    ModelLoadError,
    declare,
    extra,
    framework_error,
    model_path,
    respond,
    set_platform,
    tabular_input,
    tensor_meta,
)
from ._lightgbm_dense import DensePredictor

PREDICT = "predict"
DEFAULT_NUM_THREADS = 1
# predict_inline answers on the event loop when rows × trees is at most this (tens of µs).
INLINE_WALKS = 4096


class LightGBMModel(Model):
    """Serves a LightGBM Booster text file."""

    # One input is taken under any name, as KServe's and MLServer's servers do; metadata keeps the declared one.
    single_input_any_name = True

    def load(self) -> bool:
        lgb = import_optional("lightgbm", extra="lightgbm")
        self._params = {"num_threads": _num_threads(self)}
        path = model_path(self, "lightgbm")
        try:
            self._booster = lgb.Booster(model_file=str(path))
        except lgb.basic.LightGBMError as exc:
            raise ModelLoadError(f"Cannot load LightGBM model {path}: {exc}") from exc
        self._error = lgb.basic.LightGBMError
        self._inline_rows = INLINE_WALKS // max(1, self._booster.num_trees())
        self._n_features = self._booster.num_feature()
        self._fast = DensePredictor.build(lgb, self._booster, self._params)
        per_row = self._booster.num_model_per_iteration()
        declare(self, None, [tensor_meta(PREDICT, np.float64, [-1] if per_row == 1 else [-1, per_row])])
        set_platform(self, "lightgbm")
        self.ready = True
        return self.ready

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        X = tabular_input(self, payload)
        if isinstance(X, np.ndarray) and X.ndim != 2:
            raise InvalidInput(f"Model {self.name} expects rows of features (shape [rows, features]), got shape {list(X.shape)}")
        return self._answer(payload, X)

    def predict_inline(self, payload: Any) -> Any:
        """predict on the event loop for a float array of a few rows of a small model (rows × trees at
        most INLINE_WALKS: tens of µs); NotImplemented otherwise: the runner uses a thread."""
        if not self._inline_rows:
            return NotImplemented
        X = tabular_input(self, payload)
        if (
            type(X) is not np.ndarray
            or X.dtype.kind != "f"
            or X.ndim != 2
            or X.shape[1] != self._n_features
            or not 0 < X.shape[0] <= self._inline_rows
        ):
            return NotImplemented
        return self._answer(payload, X)

    def _answer(self, payload: Any, X: Any) -> Any:
        try:
            result = self._fast.predict(X) if self._fast is not None else None
            if result is None:
                result = self._booster.predict(X, **self._params)
        except (ValueError, TypeError, self._error) as exc:
            raise framework_error(self, exc) from exc
        return respond(self, payload, {PREDICT: result})


def _num_threads(model: Model) -> int:
    value = extra(model).get("num_threads", DEFAULT_NUM_THREADS)
    if type(value) is not int or value < 0:
        raise SettingsError(f"Model {model.name}: parameters.extra.num_threads must be a whole number >= 0 (0: every core), got {value!r}")
    return value

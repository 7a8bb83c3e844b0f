"""LightGBM Boosters saved as text (``model.txt``, from ``Booster.save_model`` or ``booster_.save_model``).

The output, named ``predict``, is the Booster's ``predict``: probabilities for binary (shape [rows])
and multiclass (shape [rows, classes]) objectives, values for regression. Inputs as for the sklearn
runtime: V1 rows, one V2 tensor [rows, features], or one tensor per column with content type "pd".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._optional import import_optional
from ..errors import InvalidInput
from ..model import Model
from ._common import (
    ModelLoadError,
    declare,
    framework_error,
    model_path,
    respond,
    set_platform,
    tabular_input,
    tensor_meta,
)

PREDICT = "predict"


class LightGBMModel(Model):
    """Serves a LightGBM Booster text file."""

    # One input is taken under any name, as KServe's and MLServer's servers do; metadata keeps the declared one.
    single_input_any_name = True

    def load(self) -> bool:
        lgb = import_optional("lightgbm", extra="lightgbm")
        path = model_path(self, "lightgbm")
        try:
            self._booster = lgb.Booster(model_file=str(path))
        except lgb.basic.LightGBMError as exc:
            raise ModelLoadError(f"Cannot load LightGBM model {path}: {exc}") from exc
        self._error = lgb.basic.LightGBMError
        per_row = self._booster.num_model_per_iteration()
        declare(self, None, [tensor_meta(PREDICT, np.float64, [-1] if per_row == 1 else [-1, per_row])])
        set_platform(self, "lightgbm")
        self.ready = True
        return self.ready

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        X = tabular_input(self, payload)
        if isinstance(X, np.ndarray) and X.ndim != 2:
            raise InvalidInput(f"Model {self.name} expects rows of features (shape [rows, features]), got shape {list(X.shape)}")
        try:
            result = self._booster.predict(X)
        except (ValueError, TypeError, self._error) as exc:
            raise framework_error(self, exc) from exc
        return respond(self, payload, {PREDICT: result})

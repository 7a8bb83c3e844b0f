"""scikit-learn models saved with joblib or pickle (``model.joblib``, ``model.pkl``, ``model.pickle``).

Loading a joblib or pickle file runs code from it: serve only files you trust.

Settings (``parameters.extra``): ``method``: ``"predict"`` (default) or ``"predict_proba"``. A V2
request may instead ask for the outputs it wants by name: ``predict`` and/or ``predict_proba``.
Inputs: V1 ``instances`` (rows of numbers, or objects: one key per column), V2 one tensor of shape
[rows, features], or one tensor per column with content type ``"pd"`` (request parameters or
``parameters.content_type``), which becomes a pandas DataFrame.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._optional import import_optional
from ..errors import InvalidInput
from ..model import Model
from ._common import (
    METHODS,
    PREDICT,
    PREDICT_PROBA,
    ModelLoadError,
    declare,
    framework_error,
    model_path,
    prediction_method,
    requested_names,
    respond,
    set_platform,
    tabular_input,
    tensor_meta,
)



class SKLearnModel(Model):
    """Serves a fitted scikit-learn estimator or pipeline (anything with ``predict``)."""

    # One input is taken under any name, as KServe's and MLServer's servers do; metadata keeps the declared one.
    single_input_any_name = True

    def load(self) -> bool:
        joblib = import_optional("joblib", extra="sklearn")
        import_optional("sklearn", extra="sklearn")
        self._method = method = prediction_method(self)
        path = model_path(self, "sklearn")
        try:
            self._model = joblib.load(path)
        except Exception as exc:  # unpickling can fail in any way
            raise ModelLoadError(f"Cannot load scikit-learn model {path}: {type(exc).__name__}: {exc}") from exc
        if not hasattr(self._model, "predict"):
            raise ModelLoadError(f"{path} holds a {type(self._model).__name__}, which has no predict method")
        if method == PREDICT_PROBA and not hasattr(self._model, PREDICT_PROBA):
            raise ModelLoadError(f"{path} holds a {type(self._model).__name__}, which has no predict_proba method")
        self._feature_names = getattr(self._model, "feature_names_in_", None)
        declare(self, None, self._output_metadata())
        set_platform(self, "sklearn")
        self.ready = True
        return self.ready

    def _output_metadata(self) -> list[dict[str, Any]]:
        from sklearn.base import is_classifier, is_regressor

        est = self._model
        outputs = []
        classes = getattr(est, "classes_", None)
        if is_classifier(est) and isinstance(classes, np.ndarray) and classes.ndim == 1:
            outputs.append(tensor_meta(PREDICT, classes.dtype, [-1]))
            if hasattr(est, PREDICT_PROBA):
                outputs.append(tensor_meta(PREDICT_PROBA, np.float64, [-1, len(classes)]))
        elif is_regressor(est) and getattr(est, "n_outputs_", 1) == 1:
            outputs.append(tensor_meta(PREDICT, np.float64, [-1]))
        return outputs

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        X = self._features(tabular_input(self, payload))
        wanted = requested_names(payload) & set(METHODS) or {self._method}
        outputs = {}
        try:
            for method in METHODS:
                if method in wanted:
                    if not hasattr(self._model, method):
                        raise InvalidInput(f"Model {self.name} ({type(self._model).__name__}) has no {method} output")
                    outputs[method] = getattr(self._model, method)(X)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise framework_error(self, exc) from exc
        return respond(self, payload, outputs)

    def _features(self, X: Any) -> Any:
        """Match the input to how the model was fitted: with column names, or without."""
        names = self._feature_names
        if isinstance(X, np.ndarray):
            if X.ndim == 1:
                raise InvalidInput(
                    f"Model {self.name} expects rows of features (shape [rows, features]), got shape {list(X.shape)}"
                )
            if X.dtype == object:  # BYTES from V2: text columns
                X = np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else v, otypes=[object])(X)
            if names is not None and X.ndim == 2 and X.shape[1] == len(names):
                pd = import_optional("pandas", extra="pandas")
                return pd.DataFrame(X, columns=names)
            return X
        if hasattr(X, "columns"):
            if names is None:  # fitted on arrays: column names mean nothing to it
                return X.to_numpy()
            if len(X.columns) == len(names) and list(X.columns) == list(range(len(names))):
                X = X.set_axis(names, axis=1)  # one unnamed [rows, features] tensor sent as "pd"
        return X

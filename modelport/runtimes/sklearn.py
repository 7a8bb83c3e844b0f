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

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _is_plain_linear_classifier(est: Any) -> bool:
    """A classifier whose predict is scikit-learn's linear one, unchanged: argmax(X @ coef.T + intercept)."""
    try:
        from sklearn.linear_model._base import LinearClassifierMixin
    except ImportError:  # moved in some future scikit-learn: no shortcut, same answers
        return False
    cls = type(est)
    return (
        isinstance(est, LinearClassifierMixin)
        and getattr(cls, "predict", None) is LinearClassifierMixin.predict
        and getattr(cls, "decision_function", None) is LinearClassifierMixin.decision_function
        and type(getattr(est, "coef_", None)) is np.ndarray  # not sparsify()'d
        and isinstance(getattr(est, "classes_", None), np.ndarray)
        and (np.isscalar(est.intercept_) or isinstance(est.intercept_, np.ndarray))
    )


def _linear_predict(est: Any, X: np.ndarray) -> np.ndarray:
    """LinearClassifierMixin.predict for a dense float X, minus its input validation: the same
    operations in the same order (scikit-learn's safe_sparse_dot is ``@`` for dense arrays)."""
    coef = est.coef_
    scores = X @ (coef.T if coef.ndim == 2 else coef) + est.intercept_
    if scores.ndim > 1 and scores.shape[1] == 1:
        scores = scores.reshape(-1)
    indices = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
    return est.classes_.take(indices, axis=0)


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
        self._prepare_fast_path()
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
        outputs = self._fast_outputs(X, wanted)
        if outputs is not None:
            return respond(self, payload, outputs)
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

    def predict_inline(self, payload: Any) -> Any:
        """predict on the event loop when that costs a few microseconds (a plain linear classifier's
        numpy predict on a validated float array of at most 256 rows); NotImplemented otherwise."""
        if not self._linear or self._method != PREDICT or requested_names(payload) - {PREDICT}:
            return NotImplemented
        X = self._features(tabular_input(self, payload))
        if type(X) is not np.ndarray or X.ndim != 2 or X.shape[0] > 256:
            return NotImplemented
        outputs = self._fast_outputs(X, {PREDICT})
        return NotImplemented if outputs is None else respond(self, payload, outputs)

    # -- the fast path ---------------------------------------------------------------------------
    # scikit-learn re-validates X on every call (dtype, finiteness, feature count, parameters): for
    # one iris row that is most of predict's ~150 µs. When the runtime has already seen that X is a
    # finite float array of the fitted width, that work changes nothing, so it is skipped; any other
    # input takes the estimator's own checked path, and so gets scikit-learn's own error (a 400).

    def _prepare_fast_path(self) -> None:
        import sklearn

        est = self._model
        self._config_context = sklearn.config_context
        n = getattr(est, "n_features_in_", None)
        self._n_features = n if isinstance(n, int) and self._feature_names is None else None
        self._linear = _is_plain_linear_classifier(est)

    def _fast_outputs(self, X: Any, wanted: set[str]) -> dict[str, Any] | None:
        """The outputs for a validated float array, or None: take the estimator's checked path."""
        if (
            self._n_features is None
            or type(X) is not np.ndarray
            or X.dtype not in _FLOATS
            or X.ndim != 2
            or X.shape[1] != self._n_features
            or not X.shape[0]
            or not np.isfinite(X).all()
            or any(not hasattr(self._model, m) for m in wanted)
        ):
            return None
        est = self._model
        outputs = {}
        for method in METHODS:
            if method not in wanted:
                continue
            if method == PREDICT and self._linear:
                outputs[method] = _linear_predict(est, X)
                continue
            # X is checked already: skip the re-check, not the estimator's arithmetic.
            with self._config_context(assume_finite=True, skip_parameter_validation=True):
                outputs[method] = getattr(est, method)(X)
        return outputs

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

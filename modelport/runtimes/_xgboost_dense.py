"""XGBoost's in-place dense prediction, minus its Python wrapper's per-call work.

``XGBClassifier.predict_proba`` on one iris row costs ~120 µs of CPU, of which XGBoost's C prediction
(``XGBoosterPredictFromDense``, the call ``Booster.inplace_predict`` makes for a numpy array) is
~45: the rest is Python that re-derives the same things on every call (a global-config round trip
for ``verbosity``, the iteration range, the JSON arguments, a dispatch over a dozen input kinds, a
class built per call to read the output). For a C-contiguous float32/float64 array of the model's
width, :class:`DensePredictor` makes that same C call with arguments built once, then applies the
estimator's own post-processing (class labels, two-column binary probabilities). Same function, same
arguments: the same numbers. The predictor checks that at load on probe rows (NaN included) against
the estimator itself and is not used if anything differs or an XGBoost internal it needs is missing;
any other input (DataFrames, integers, wrong width) takes XGBoost's own path and gets its answers
and errors.
"""

from __future__ import annotations

import ctypes
import json
from typing import Any

import numpy as np

from ._common import checked_fast_path

PREDICT, PREDICT_PROBA = "predict", "predict_proba"
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_COPY_BYTES = 4096  # inputs up to this size are copied rather than addressed in place (see _raw)


class DensePredictor:
    """Answers ``predict``/``predict_proba`` of a Booster, XGBClassifier or XGBRegressor."""

    def __init__(self, xgb: Any, model: Any, booster: Any):
        core = xgb.core
        self._fn = core._LIB.XGBoosterPredictFromDense
        self._check = core._check_call
        self._ulong = core.c_bst_ulong
        self._handle = booster.handle
        self._booster = booster
        self.n_features = booster.num_features()
        if isinstance(model, xgb.Booster):
            self.kind, missing, begin_end, self.methods = "booster", np.nan, (0, 0), {PREDICT}
        else:
            self.kind = "classifier" if isinstance(model, xgb.XGBClassifier) else "regressor"
            missing, begin_end = model.missing, model._get_iteration_range(None)
            self.methods = {PREDICT, PREDICT_PROBA} if self.kind == "classifier" else {PREDICT}
            self.n_classes = int(getattr(model, "n_classes_", 0))
            self.objective = model.objective
        # The JSON arguments Booster.inplace_predict builds on every call, built once.
        self._args = json.dumps({
            "type": 0, "training": False, "iteration_begin": int(begin_end[0]), "iteration_end": int(begin_end[1]),
            "missing": missing, "strict_shape": False, "cache_id": 0,
        }).encode()
        self.trees = _tree_count(booster, begin_end)
        self._typestr = {dtype: dtype.str.encode() for dtype in _FLOATS}

    @classmethod
    def build(cls, xgb: Any, model: Any, booster: Any) -> DensePredictor | None:
        """A checked predictor for ``model``, or None when its answers could differ (then: XGBoost's API)."""
        if type(model) not in (xgb.Booster, xgb.XGBClassifier, xgb.XGBRegressor):
            return None  # XGBRanker, random-forest and user subclasses: their own predict
        if type(model) is not xgb.Booster and (model.booster == "gblinear" or model.objective == "multi:softmax"):
            return None  # the estimator does not take the in-place path for these
        if any(t == "c" for t in (booster.feature_types or ())):
            return None  # categorical features: XGBoost's own handling
        return checked_fast_path("XGBoost", "XGBoost's own", lambda: cls(xgb, model, booster),
                                 lambda predictor: predictor._agrees_with(xgb, model))

    def outputs(self, X: Any, wanted: set[str]) -> dict[str, np.ndarray] | None:
        """The outputs for a dense float array of the model's width, or None: take XGBoost's own path."""
        if (
            type(X) is not np.ndarray
            or X.dtype not in _FLOATS
            or X.ndim != 2
            or X.shape[1] != self.n_features
            or not X.shape[0]
            or not X.flags.c_contiguous
            or not X.flags.aligned
            or not wanted <= self.methods
        ):
            return None
        raw = self._raw(X)
        out = {}
        if PREDICT in wanted:
            out[PREDICT] = self._labels(raw) if self.kind == "classifier" else raw
        if PREDICT_PROBA in wanted:
            out[PREDICT_PROBA] = self._probabilities(raw)
        return out

    def _raw(self, X: np.ndarray) -> np.ndarray:
        """XGBoosterPredictFromDense, as Booster.inplace_predict calls it; the result copied out of
        XGBoost's per-thread buffer (the next prediction on this thread reuses it). A few rows go in
        as a ctypes copy (reading an ndarray's own address through __array_interface__ costs more than
        copying them); the answer comes back in a ctypes array numpy wraps, for the same reason."""
        if X.nbytes <= _COPY_BYTES:
            rows = ctypes.create_string_buffer(X.tobytes(), X.nbytes)
            address, readonly = ctypes.addressof(rows), False
        else:
            address, readonly = X.__array_interface__["data"]
        interface = b'{"data": [%d, %s], "shape": [%d, %d], "strides": null, "typestr": "%s", "version": 3}' % (
            address, b"true" if readonly else b"false", X.shape[0], X.shape[1], self._typestr[X.dtype])
        shape = ctypes.POINTER(self._ulong)()
        dims = self._ulong()
        preds = ctypes.POINTER(ctypes.c_float)()
        self._check(self._fn(self._handle, interface, self._args, None, ctypes.byref(shape), ctypes.byref(dims), ctypes.byref(preds)))
        dims = tuple(shape[i] for i in range(dims.value))
        size = 1
        for d in dims:
            size *= d
        out = (ctypes.c_float * size)()
        if size:
            ctypes.memmove(out, preds, size * 4)
        return np.frombuffer(out, dtype=np.float32).reshape(dims)

    # XGBClassifier.predict / predict_proba after their in-place prediction (xgboost/sklearn.py), step by step.
    def _labels(self, probs: np.ndarray) -> np.ndarray:
        if probs.ndim > 1 and self.n_classes != 2:
            return np.argmax(probs, axis=1)  # multi-class
        if probs.ndim > 1 and probs.shape[1] != 1:
            labels = np.zeros(probs.shape)  # multi-label
            labels[probs > 0.5] = 1
            return labels
        labels = np.repeat(0, probs.shape[0])  # binary
        labels[probs > 0.5] = 1
        return labels

    def _probabilities(self, probs: np.ndarray) -> np.ndarray:
        if probs.ndim == 2 and (probs.shape[1] == self.n_classes or (self.n_classes == 2 and probs.shape[1] >= 2)):
            return probs  # multi-class, multi-label
        return np.vstack((1.0 - probs, probs)).transpose()  # binary: [P(0), P(1)]

    def _agrees_with(self, xgb: Any, model: Any) -> bool:
        """This predictor's outputs equal the model's own, bit for bit, on probe rows (NaN included),
        as float32 and float64. A warm-up too: the Booster configures itself on its first prediction."""
        rng = np.random.default_rng(0)
        probe = rng.normal(0, 10, (16, self.n_features))
        probe[::3, :: max(1, self.n_features // 2)] = np.nan
        for X in (probe, probe.astype(np.float32), probe[:1].copy()):
            got = self.outputs(X, self.methods)
            for method in self.methods:
                expect = model.inplace_predict(X) if self.kind == "booster" else getattr(model, method)(X)
                if got is None or got[method].dtype != expect.dtype or not np.array_equal(got[method], expect, equal_nan=True):
                    return False
        return True


def _tree_count(booster: Any, begin_end: tuple[int, int]) -> int:
    """Trees one prediction walks: rounds used × trees per round (outputs × parallel trees)."""
    rounds = booster.num_boosted_rounds()
    begin, end = begin_end
    used = (end or rounds) - begin
    total = _find(json.loads(booster.save_config()), "num_trees")
    if total is None or not rounds:
        return 1 << 30  # unknown (gblinear has no trees, and no cheap bound): never inline
    return int(total) * used // rounds


def _find(tree: Any, key: str) -> Any:
    """The first value under ``key`` anywhere in a JSON document (gbtree and dart nest it differently)."""
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        tree = list(tree.values())
    if isinstance(tree, list):
        for item in tree:
            found = _find(item, key)
            if found is not None:
                return found
    return None

"""LightGBM's prediction for a dense numpy array, minus ``Booster.predict``'s per-call Python.

``Booster.predict`` on one iris row costs ~18 µs with one thread, of which LightGBM's C prediction
(``LGBM_BoosterPredictForMat``, the call it makes for a numpy array) is ~8: the rest builds a
predictor object, copies and re-serializes the parameters and dispatches over input kinds on every
call. For a C-contiguous float32/float64 array of the model's width, :class:`DensePredictor` makes
that same C call with the same arguments (parameters, iteration range and layout as
``Booster.predict`` derives them), so the numbers are LightGBM's. It checks that at load on probe
rows (NaN included) against ``Booster.predict`` and is not used if anything differs or a LightGBM
internal it needs is missing; other inputs take ``Booster.predict`` and get its answers and errors.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from ._common import checked_fast_path

_DTYPES = {np.dtype(np.float32): 0, np.dtype(np.float64): 1}  # LightGBM's C_API_DTYPE_FLOAT32 / FLOAT64
_ROW_MAJOR, _COL_MAJOR, _PREDICT_NORMAL = 1, 0, 0


class DensePredictor:
    def __init__(self, lgb: Any, booster: Any, params: dict[str, Any]):
        basic = lgb.basic
        self._lib = basic._LIB
        self._check = basic._safe_call
        self._handle = booster._handle
        self._params = basic._c_str(basic._param_dict_to_str(params))
        self._num_iteration = booster.best_iteration  # what Booster.predict uses when not told
        self.n_features = booster.num_feature()
        self._booster = booster  # its handle must outlive the single-row configs below
        try:
            self._single: _SingleRow | None = _SingleRow(basic, self._handle, self._params, self._num_iteration, self.n_features)
        except (AttributeError, basic.LightGBMError):  # a LightGBM without the single-row API: PredictForMat
            self._single = None

    @classmethod
    def build(cls, lgb: Any, booster: Any, params: dict[str, Any]) -> DensePredictor | None:
        """A checked predictor, or None when its answers could differ (then: Booster.predict)."""
        return checked_fast_path("LightGBM", "Booster.predict", lambda: cls(lgb, booster, params),
                                 lambda predictor: predictor._agrees_with(booster, params))

    def predict(self, X: Any) -> np.ndarray | None:
        """Booster.predict(X) for a dense float array of the model's width, or None: use Booster.predict."""
        if (
            type(X) is not np.ndarray
            or X.dtype not in _DTYPES
            or X.ndim != 2
            or X.shape[1] != self.n_features
            or not 0 < X.shape[0] < 2**31 - 1
            or not X.flags.c_contiguous
            or not X.flags.aligned
        ):
            return None
        rows = X.shape[0]
        if rows == 1 and self._single is not None:
            return self._single.predict(X)
        # Booster.predict's layout rule: a column-major view if the array is one (a single row is both)
        layout = _COL_MAJOR if X.flags.f_contiguous else _ROW_MAJOR
        n_preds = ctypes.c_int64(0)
        self._check(self._lib.LGBM_BoosterCalcNumPredict(
            self._handle, ctypes.c_int(rows), ctypes.c_int(_PREDICT_NORMAL), ctypes.c_int(0),
            ctypes.c_int(self._num_iteration), ctypes.byref(n_preds)))
        preds = np.empty(n_preds.value, dtype=np.float64)
        written = ctypes.c_int64(0)
        self._check(self._lib.LGBM_BoosterPredictForMat(
            self._handle, ctypes.c_void_p(X.ctypes.data), ctypes.c_int(_DTYPES[X.dtype]), ctypes.c_int32(rows),
            ctypes.c_int32(X.shape[1]), ctypes.c_int(layout), ctypes.c_int(_PREDICT_NORMAL), ctypes.c_int(0),
            ctypes.c_int(self._num_iteration), self._params, ctypes.byref(written),
            preds.ctypes.data_as(ctypes.POINTER(ctypes.c_double))))
        if written.value != n_preds.value:
            return None
        return preds.reshape(rows, -1) if preds.size != rows else preds

    def _agrees_with(self, booster: Any, params: dict[str, Any]) -> bool:
        """Bit-for-bit equal to Booster.predict on probe rows (NaN included), float32 and float64,
        several rows at once and one at a time (the single-row path)."""
        rng = np.random.default_rng(0)
        probe = rng.normal(0, 10, (16, self.n_features))
        probe[::3, :: max(1, self.n_features // 2)] = np.nan
        arrays = [probe, probe.astype(np.float32)]
        arrays += [a[i : i + 1].copy() for a in arrays for i in range(4)]
        for X in arrays:
            got, expect = self.predict(X), booster.predict(X, **params)
            if got is None or got.dtype != expect.dtype or got.shape != expect.shape or not np.array_equal(got, expect, equal_nan=True):
                return False
        return True


class _SingleRow:
    """``LGBM_BoosterPredictForMatSingleRowFast`` for one row: one FastConfig per input dtype, made at
    load with the same parameters and iteration range as the PredictForMat call (each holds its own
    predictor behind its own lock, so threads may share it). Freed with this object."""

    def __init__(self, basic: Any, handle: Any, params: bytes, num_iteration: int, n_features: int):
        lib = basic._LIB
        self._check = basic._safe_call
        self._free = lib.LGBM_FastConfigFree
        self._configs: dict[np.dtype, ctypes.c_void_p] = {}
        for dtype, code in _DTYPES.items():
            config = ctypes.c_void_p()
            self._check(lib.LGBM_BoosterPredictForMatSingleRowFastInit(
                handle, ctypes.c_int(_PREDICT_NORMAL), ctypes.c_int(0), ctypes.c_int(num_iteration),
                ctypes.c_int(code), ctypes.c_int32(n_features), params, ctypes.byref(config)))
            self._configs[dtype] = config
        n_preds = ctypes.c_int64(0)
        self._check(lib.LGBM_BoosterCalcNumPredict(
            handle, ctypes.c_int(1), ctypes.c_int(_PREDICT_NORMAL), ctypes.c_int(0), ctypes.c_int(num_iteration),
            ctypes.byref(n_preds)))
        self._n_preds = n_preds.value
        self._out = ctypes.c_double * n_preds.value
        self._shape = (1, n_preds.value) if n_preds.value != 1 else (1,)
        # Its own prototype (not lightgbm's shared function object). The row goes in as a bytes copy and
        # the answer comes back in a ctypes array numpy wraps: ~0.2 µs each, where an array's .ctypes.data
        # costs ~0.6 µs (two per call).
        prototype = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int64), self._out)
        self._fn = prototype(("LGBM_BoosterPredictForMatSingleRowFast", lib))

    def predict(self, X: np.ndarray) -> np.ndarray | None:
        """Booster.predict(X) for one C-contiguous row (its dtype already checked)."""
        out = self._out()
        written = ctypes.c_int64(0)
        self._check(self._fn(self._configs[X.dtype], X.tobytes(), ctypes.byref(written), out))
        if written.value != self._n_preds:
            return None
        return np.frombuffer(out, dtype=np.float64).reshape(self._shape)

    def __del__(self) -> None:
        for config in getattr(self, "_configs", {}).values():
            if config.value:
                self._free(config)

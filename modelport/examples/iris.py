"""An iris classifier, trained at load time from scikit-learn's bundled data (no download)."""

from __future__ import annotations

import numpy as np

from modelport import Model, get_predict_input, get_predict_response
from modelport._optional import import_optional


class IrisClassifier(Model):
    def load(self) -> bool:
        datasets = import_optional("sklearn.datasets", extra="sklearn")
        linear = import_optional("sklearn.linear_model", extra="sklearn")
        x, y = datasets.load_iris(return_X_y=True)
        self._clf = linear.LogisticRegression(max_iter=1000).fit(x, y)
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        from modelport.errors import InvalidInput

        try:
            x = np.asarray(get_predict_input(payload, dtype=np.float64), dtype=np.float64)
        except (TypeError, ValueError) as exc:  # V1 instances that are not rows of numbers
            raise InvalidInput(f"iris expects rows of 4 numbers: {exc}") from None
        if x.ndim != 2 or x.shape[1] != 4:
            raise InvalidInput(f"iris expects rows of 4 features (shape [N, 4]), got shape {list(x.shape)}")
        return get_predict_response(payload, self._clf.predict(x), self.name)

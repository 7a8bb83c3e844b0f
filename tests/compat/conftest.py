"""Shared pieces of the MLServer compatibility tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

RUNTIMES = Path(__file__).parent / "runtimes"


@pytest.fixture
def runtimes_folder(tmp_path) -> Path:
    """A copy of the custom-runtime folder (its imports are modelport.mlserver)."""
    target = tmp_path / "runtimes"
    shutil.copytree(RUNTIMES, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture(scope="session")
def iris():
    from sklearn.datasets import load_iris

    data = load_iris()
    return data.data.astype("float32"), data.target


def write_sklearn(path: Path, iris) -> None:
    import joblib
    from sklearn.linear_model import LogisticRegression

    x, y = iris
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), path)


def write_xgboost(path: Path, iris) -> None:
    import xgboost

    x, y = iris
    path.parent.mkdir(parents=True, exist_ok=True)
    xgboost.XGBClassifier(n_estimators=4, max_depth=2).fit(x, y).save_model(str(path))


def write_onnx(path: Path, iris) -> None:
    import skl2onnx
    from sklearn.linear_model import LogisticRegression

    x, y = iris
    clf = LogisticRegression(max_iter=500).fit(x, y)
    onx = skl2onnx.to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}}, target_opset=17)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(onx.SerializeToString())


from ..e2e.serving import served  # noqa: E402,F401 - the `modelport serve` subprocess fixture

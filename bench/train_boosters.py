"""Model folders for the XGBoost and LightGBM runtimes, trained on iris, for cpuprobe/run.py.

Writes <out>/xgboost-iris/ (XGBClassifier, 100 rounds, saved as model.json) and <out>/lightgbm-iris/
(LGBMClassifier, 100 rounds, booster saved as model.txt), each with a model-settings.json naming the
model "iris" and the runtime, and method predict_proba (the request the floor below answers).
Prints the direct-call floor: the estimator's own predict_proba on one row, timed in-process.

    python bench/train_boosters.py bench/.work
    python bench/cpuprobe.py --server modelport --model-dir bench/.work/xgboost-iris --proto v2,v1
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_iris


def floor_us(predict, row, seconds: float = 1.0) -> float:
    """The fastest of a few timed loops of predict(row), in µs per call."""
    for _ in range(200):
        predict(row)
    best = float("inf")
    for _ in range(5):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 5:
            for _ in range(100):
                predict(row)
            n += 100
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


def main(out: Path) -> None:
    x, y = load_iris(return_X_y=True)
    row = x[:1].astype(np.float32)
    settings = {"name": "iris", "parameters": {"extra": {"method": "predict_proba"}}}
    try:
        import xgboost as xgb
    except ImportError:
        print("xgboost not installed: no xgboost-iris")
    else:
        folder = out / "xgboost-iris"
        folder.mkdir(parents=True, exist_ok=True)
        xgb.XGBClassifier(n_estimators=100, random_state=0).fit(x, y).save_model(folder / "model.json")
        (folder / "model-settings.json").write_text(json.dumps({**settings, "implementation": "xgboost"}))
        est = xgb.XGBClassifier()
        est.load_model(folder / "model.json")
        default = floor_us(est.predict_proba, row)
        est.get_booster().set_param({"nthread": 1})
        print(f"xgboost {xgb.__version__} -> {folder}; predict_proba floor: {default:.1f} µs, "
              f"nthread=1: {floor_us(est.predict_proba, row):.1f} µs")
    try:
        import lightgbm as lgb
    except ImportError:
        print("lightgbm not installed: no lightgbm-iris")
    else:
        folder = out / "lightgbm-iris"
        folder.mkdir(parents=True, exist_ok=True)
        est = lgb.LGBMClassifier(n_estimators=100, random_state=0, verbose=-1).fit(x, y)
        est.booster_.save_model(folder / "model.txt")
        (folder / "model-settings.json").write_text(json.dumps({"name": "iris", "implementation": "lightgbm"}))
        booster = lgb.Booster(model_file=str(folder / "model.txt"))
        print(f"lightgbm {lgb.__version__} -> {folder}; Booster.predict floor: {floor_us(booster.predict, row):.1f} µs, "
              f"num_threads=1: {floor_us(lambda r: booster.predict(r, num_threads=1), row):.1f} µs")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

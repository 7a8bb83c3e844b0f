"""Train the benchmark model once: iris LogisticRegression(max_iter=1000) -> <out>/iris.joblib.

Also writes <out>/iris_rows.json: the 32 feature rows the request bodies are built from (the first
row is the [1,4] body), so every load tool and every server sees the same numbers.

    python bench/train_iris.py bench/.work
"""

import json
import sys
from pathlib import Path

import joblib
import sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    x, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=1000).fit(x, y)
    joblib.dump(clf, out / "iris.joblib")
    rows = x[:: len(x) // 32][:32]  # spread over the three classes
    (out / "iris_rows.json").write_text(json.dumps({"rows": rows.tolist(), "sklearn": sklearn.__version__}))
    print(f"trained iris LogisticRegression with scikit-learn {sklearn.__version__} -> {out / 'iris.joblib'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

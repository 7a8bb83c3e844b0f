"""KServe peer for the many-models scenario: one ``kserve.ModelServer`` serving every model of a folder.

Run inside bench/.venvs/kserve:

    python bench/peers/kserve_many.py --models_dir DIR --http_port P --grpc_port G [kserve ModelServer flags]

KServe's ``sklearnserver`` serves one model per process, and KServe has no multi-model loader of its
own (ModelMesh is a separate system), so this script does what a KServe user would: one
``IrisModel`` (bench/peers/kserve_iris.py) per subfolder ``DIR/<name>/model.joblib``, loaded one
after another, then ``ModelServer().start(models)``.
"""

import argparse
from pathlib import Path

import joblib
import kserve
from kserve_iris import IrisModel


class FolderIrisModel(IrisModel):
    def __init__(self, name: str, path: Path):
        super().__init__(name)
        self.path = path

    def load(self) -> bool:
        self.clf = joblib.load(self.path)
        self.ready = True
        return self.ready


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--models_dir", required=True)
    args, _ = parser.parse_known_args()
    models = []
    for folder in sorted(Path(args.models_dir).iterdir()):
        if (folder / "model.joblib").exists():
            model = FolderIrisModel(folder.name, folder / "model.joblib")
            model.load()
            models.append(model)
    kserve.ModelServer().start(models)

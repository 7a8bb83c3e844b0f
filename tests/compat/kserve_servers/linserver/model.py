import json
import os
import pathlib

import numpy as np

from kserve import Model
from kserve.errors import InferenceError, ModelMissingError
from kserve.protocol.infer_type import InferRequest
from kserve.utils.utils import get_predict_input, get_predict_response

MODEL_FILE = "model.json"


class LinearModel(Model):
    def __init__(self, name: str, model_dir: str):
        super().__init__(name)
        self.model_dir = model_dir
        self.ready = False

    def load(self) -> bool:
        path = pathlib.Path(self.model_dir) / MODEL_FILE
        if not path.is_file():
            raise ModelMissingError(self.model_dir)
        spec = json.loads(path.read_text())
        self.coef = np.asarray(spec["coef"], dtype=np.float64)
        self.intercept = np.asarray(spec["intercept"], dtype=np.float64)
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        try:
            instances = np.asarray(get_predict_input(payload), dtype=np.float64)
            scores = instances @ self.coef.T + self.intercept
            if os.environ.get("LINSERVER_SCORES", "false") == "true":
                result = scores
            else:
                result = scores.argmax(axis=1)
            return get_predict_response(payload, result, self.name)
        except Exception as e:
            raise InferenceError(str(e))

    def is_v2(self, payload) -> bool:
        return isinstance(payload, InferRequest)

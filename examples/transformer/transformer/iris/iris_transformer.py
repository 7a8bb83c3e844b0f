"""A KServe-style transformer for the iris predictor: named features in, class names out.

It overrides only ``preprocess`` and ``postprocess``; the base ``Model.predict`` sends the
pre-processed payload to the predictor given by ``--predictor-host`` in the protocol given by
``--predictor-protocol`` (v1, v2 or grpc-v2). Serve the pair with::

    modelport serve examples/transformer/predictor --http-port 8080 --grpc-port 8081
    modelport serve examples/transformer/transformer --http-port 8090 --grpc-port 8091 \\
        --predictor-host 127.0.0.1:8080 --predictor-protocol v2

and ask the transformer::

    curl -s localhost:8090/v1/models/iris:predict -d '{"instances": [
        {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}'
    {"predictions":["setosa"]}
"""

from __future__ import annotations

import numpy as np

from modelport import InferInput, InferRequest, InferResponse, Model
from modelport.errors import InvalidInput

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
CLASSES = ("setosa", "versicolor", "virginica")


class IrisTransformer(Model):
    def preprocess(self, payload, headers=None):
        """``{"instances": [{feature: value, ...}, ...]}`` -> rows of 4 floats, in the predictor's protocol."""
        instances = payload.get("instances") if isinstance(payload, dict) else None
        if not isinstance(instances, list) or not all(isinstance(row, dict) for row in instances):
            raise InvalidInput(f'Send {{"instances": [{{{", ".join(f"{f!r}: ..." for f in FEATURES)}}}, ...]}}')
        try:
            rows = [[float(row[name]) for name in FEATURES] for row in instances]
        except KeyError as exc:
            raise InvalidInput(f"Each instance needs {', '.join(FEATURES)}; one is missing {exc}") from None
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"Feature values must be numbers: {exc}") from None
        protocol = self.predictor_config.predictor_protocol if self.predictor_config else "v1"
        if protocol == "v1":
            return {"instances": rows}
        x = np.asarray(rows, dtype=np.float32).reshape(-1, len(FEATURES))
        return InferRequest(self.name, [InferInput("input-0", list(x.shape), "FP32", x)])

    def postprocess(self, result, headers=None):
        """Class ids (a V1 dict or a V2 response) -> class names."""
        if isinstance(result, InferResponse):
            ids = result.outputs[0].as_numpy().tolist()
        else:
            ids = result["predictions"]
        return {"predictions": [CLASSES[int(i)] for i in ids]}

# An MLServer custom runtime as MLServer's docs write one; only "mlserver" became "modelport.mlserver".
import json
import os

import numpy as np

from modelport.mlserver import MLModel, types
from modelport.mlserver.codecs import NumpyCodec, StringCodec
from modelport.mlserver.errors import InferenceError
from modelport.mlserver.utils import get_model_uri

WELLKNOWN_MODEL_FILENAMES = ["weights.json", "model.json"]


class EchoRuntime(MLModel):
    async def load(self) -> bool:
        model_uri = await get_model_uri(self._settings, wellknown_filenames=WELLKNOWN_MODEL_FILENAMES)
        with open(model_uri) as f:
            self._weights = json.load(f)
        self._weights_file = os.path.basename(model_uri)
        return True

    async def predict(self, payload: types.InferenceRequest) -> types.InferenceResponse:
        outputs = []
        for request_input in payload.inputs:
            if request_input.name == "fail":
                raise InferenceError("asked to fail")
            if request_input.datatype == "BYTES":
                texts = self.decode(request_input, default_codec=StringCodec)
                outputs.append(StringCodec.encode_output(f"echo-{request_input.name}", [t.upper() for t in texts]))
            else:
                array = self.decode(request_input, default_codec=NumpyCodec)
                scaled = (np.asarray(array, dtype=np.float64) * self._weights["scale"]).astype(np.float64)
                outputs.append(NumpyCodec.encode_output(f"scaled-{request_input.name}", scaled))
        return types.InferenceResponse(
            id=payload.id,
            model_name=self.name,
            model_version=self.version,
            parameters=types.Parameters(weights=self._weights_file),
            outputs=outputs,
        )

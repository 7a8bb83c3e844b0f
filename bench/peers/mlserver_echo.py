"""MLServer peer for the large-tensor scenario: a model that answers its input tensor unchanged.

model-settings.json: ``{"name": "echo", "implementation": "mlserver_echo.EchoModel"}``; bench/peers
must be on PYTHONPATH. The tensor's ``data`` is passed back as MLServer decoded it (no codec, no
numpy), so what is measured is MLServer's own decode and encode. MLServer has no REST binary
extension; over gRPC it reads raw_input_contents and answers raw when the request was raw.
"""

from mlserver import MLModel
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput


class EchoModel(MLModel):
    async def load(self) -> bool:
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        tensor = payload.inputs[0]
        out = ResponseOutput(name="output-0", shape=tensor.shape, datatype=tensor.datatype, data=tensor.data)
        return InferenceResponse(model_name=self.name, id=payload.id, outputs=[out])

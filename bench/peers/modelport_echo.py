"""A model that answers its input tensor unchanged: the large-tensor scenario measures the server's
transport and codec work, not a model. No per-element Python: the array goes back as it came."""

from modelport import InferOutput, InferResponse, Model


class EchoModel(Model):
    def load(self) -> bool:
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        tensor = payload.inputs[0]
        out = InferOutput("output-0", tensor.shape, tensor.datatype)
        out.set_data_from_numpy(tensor.as_numpy(), binary_data=False)
        return InferResponse(payload.id, self.name, [out])

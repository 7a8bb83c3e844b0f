"""KServe peer for the large-tensor scenario: a model that answers its input tensor unchanged.

Run inside bench/.venvs/kserve:

    python bench/peers/kserve_echo.py --http_port P --grpc_port G [kserve ModelServer flags]

Written as a KServe user would, with kserve's own ``get_predict_input``/``get_predict_response``:
the answer is binary over REST when the request asks (``binary_data_output``) and raw over gRPC when
the request is raw, exactly as KServe decides. The model is named ``echo``.
"""

import kserve
from kserve.utils.utils import get_predict_input, get_predict_response


class EchoModel(kserve.Model):
    def load(self) -> bool:
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        return get_predict_response(payload, get_predict_input(payload), self.name)


if __name__ == "__main__":
    args, _ = kserve.model_server.parser.parse_known_args()
    model = EchoModel("echo")
    model.load()
    kserve.ModelServer().start([model])

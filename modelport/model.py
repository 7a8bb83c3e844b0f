"""The Model base class: what a team writes around its model.

The names and hook signatures follow KServe's Python SDK, so a ``kserve.Model`` subclass runs here
after changing only its imports. Any hook may be ``def`` or ``async def``; the runner decides once,
when the model loads, how to call each (sync hooks never run on the event loop).

A V1 request reaches ``preprocess``/``predict`` as the dict the client sent; a V2 request (REST or
gRPC) as an :class:`~modelport.types.InferRequest`. A hook that declares a ``response_headers``
parameter receives a dict; what it puts there is sent back as HTTP headers (or gRPC metadata).
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING, Any

from .errors import Unimplemented

if TYPE_CHECKING:
    from .settings import ModelSettings

logger = logging.getLogger("modelport")

TensorMetadata = dict[str, Any]  # {"name": str, "datatype": str, "shape": list[int]}


class PredictorProtocol(enum.Enum):
    """How a transformer talks to its predictor (KServe's names and values)."""

    REST_V1 = "v1"
    REST_V2 = "v2"
    GRPC_V2 = "grpc-v2"


class PredictorConfig:
    """Where a transformer's predictor lives (used when ``predictor_host`` is set)."""

    def __init__(
        self,
        predictor_host: str,
        predictor_protocol: str = "v1",
        predictor_use_ssl: bool = False,
        predictor_request_timeout_seconds: float = 600,
        predictor_request_retries: int = 0,
        predictor_health_check: bool = False,
    ):
        self.predictor_host = predictor_host
        self.predictor_protocol = predictor_protocol
        self.predictor_use_ssl = predictor_use_ssl
        self.predictor_request_timeout_seconds = predictor_request_timeout_seconds
        self.predictor_request_retries = predictor_request_retries
        self.predictor_health_check = predictor_health_check


class Model:
    """Base class for a served model. Override ``load`` and ``predict``; the other hooks are optional.

    A transformer (a model with a ``predictor_config``, or served with ``--predictor-host``)
    overrides only ``preprocess``/``postprocess``: the base ``predict`` calls the remote predictor.
    """

    # The remote predictor (a modelport.serving.transformer.Predictor), attached by the server when a
    # predictor_config is set; the base predict delegates to it.
    _predictor: Any = None

    def __init__(
        self,
        name: str,
        predictor_config: PredictorConfig | None = None,
        return_response_headers: bool = False,
    ):
        self.name = name
        self.ready = False
        self.predictor_config = predictor_config
        self.return_response_headers = return_response_headers
        # Set by the repository before load() when the model comes from a model-settings.json.
        self.settings: ModelSettings | None = None
        self.version: str | None = None
        self.platform: str = ""
        self.inputs: list[TensorMetadata] = []
        self.outputs: list[TensorMetadata] = []

    # -- lifecycle -----------------------------------------------------------------------------
    def load(self) -> bool:
        """Load weights and get ready to serve; return ``self.ready``."""
        self.ready = True
        return self.ready

    def stop(self) -> None:
        """Release what ``load`` acquired; called on unload and on server shutdown."""

    def healthy(self) -> bool:
        return self.ready

    # -- the request path ---------------------------------------------------------------------
    def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        return payload

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        """Transformers: send the payload to the predictor. Other models must override this."""
        if self._predictor is None:
            raise Unimplemented(f"Model {self.name} does not implement predict")
        return await self._predictor.infer(payload, headers)

    def predictor_healthy(self) -> bool:
        """False only when ``predictor_health_check`` is on and the predictor is not ready."""
        return self._predictor is None or self._predictor.healthy()

    def postprocess(self, result: Any, headers: dict[str, str] | None = None) -> Any:
        return result

    def explain(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        raise Unimplemented(f"Model {self.name} does not support explain")

    # -- metadata -----------------------------------------------------------------------------
    def get_input_types(self) -> list[TensorMetadata]:
        return self.inputs

    def get_output_types(self) -> list[TensorMetadata]:
        return self.outputs

    def metadata(self) -> dict[str, Any]:
        """The V2 model-metadata document."""
        out: dict[str, Any] = {"name": self.name, "versions": [self.version] if self.version else [], "platform": self.platform}
        out["inputs"] = list(self.get_input_types())
        out["outputs"] = list(self.get_output_types())
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, version={self.version!r}, ready={self.ready})"

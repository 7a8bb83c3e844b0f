"""modelport: serve Python models over the Open Inference Protocol (REST and gRPC) and KServe V1.

Importing this package has no side effects: no argv parsing, no logging set-up, no heavy imports.
"""

from ._version import __version__
from .errors import (
    InferenceError,
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
    ModelportError,
    ServerNotLive,
    ServerNotReady,
    UnsupportedProtocol,
)
from .model import Model, PredictorConfig, PredictorProtocol, logger
from .payloads import get_predict_input, get_predict_response
from .repository import ModelRepository
from .serving.server import ModelServer
from .settings import ModelSettings, ServerSettings
from .types import InferInput, InferOutput, InferRequest, InferResponse, RequestedOutput

# KServe's top-level client names, imported on first use (they pull in httpx and grpc).
_LAZY = {"InferenceRESTClient": "client", "InferenceGRPCClient": "client", "RESTConfig": "client"}
# KServe's module paths that ``import kserve`` makes attributes (``kserve.model_server.parser``), loaded
# on first use so that ``import modelport`` stays light.
_SUBMODULES = frozenset(
    ("model_server", "model_repository", "constants", "utils", "logging", "errors", "protocol", "metrics", "model")
)


def __getattr__(name: str):
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "__version__",
    "InferInput",
    "InferOutput",
    "InferRequest",
    "InferResponse",
    "InferenceError",
    "InferenceGRPCClient",
    "InferenceRESTClient",
    "InvalidInput",
    "Model",
    "ModelNotFound",
    "ModelNotReady",
    "ModelRepository",
    "ModelServer",
    "ModelSettings",
    "ModelportError",
    "PredictorConfig",
    "PredictorProtocol",
    "RESTConfig",
    "RequestedOutput",
    "ServerNotLive",
    "ServerNotReady",
    "ServerSettings",
    "UnsupportedProtocol",
    "get_predict_input",
    "get_predict_response",
    "logger",
]

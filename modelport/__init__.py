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


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
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

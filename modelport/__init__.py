"""modelport: serve Python models over the Open Inference Protocol (REST and gRPC) and KServe V1.

Importing this package has no side effects: no argv parsing, no logging set-up, no heavy imports; the
public names load on first use (see docs/ARCHITECTURE.md).
"""

from ._version import __version__

# Every public name, loaded on first use (PEP 562), so that ``import modelport`` loads no server, no
# numpy and no gRPC: a script that only subclasses Model, or only uses the client, pays for what it uses.
_LAZY = {
    "InferenceError": "modelport.errors",
    "InvalidInput": "modelport.errors",
    "ModelNotFound": "modelport.errors",
    "ModelNotReady": "modelport.errors",
    "ModelportError": "modelport.errors",
    "ServerNotLive": "modelport.errors",
    "ServerNotReady": "modelport.errors",
    "UnsupportedProtocol": "modelport.errors",
    "Model": "modelport.model",
    "PredictorConfig": "modelport.model",
    "PredictorProtocol": "modelport.model",
    "logger": "modelport.model",
    "get_predict_input": "modelport.predict_io",
    "get_predict_response": "modelport.predict_io",
    "ModelRepository": "modelport.repository.entries",
    "ModelServer": "modelport.serving.server",
    "ModelSettings": "modelport.settings",
    "ServerSettings": "modelport.settings",
    "InferInput": "modelport.types",
    "InferOutput": "modelport.types",
    "InferRequest": "modelport.types",
    "InferResponse": "modelport.types",
    "RequestedOutput": "modelport.types",
    # KServe's top-level client names (they pull in httpx and grpc).
    "InferenceRESTClient": "modelport.client",
    "InferenceGRPCClient": "modelport.client",
    "RESTConfig": "modelport.client",
}
# KServe's module paths that ``import kserve`` makes attributes (``kserve.model_server.parser``), loaded
# on first use so that ``import modelport`` stays light.
_SUBMODULES = frozenset(
    ("model_server", "model_repository", "constants", "utils", "logging", "errors", "protocol", "metrics", "model",
     "inference_client", "predictor_config")
)


def __getattr__(name: str):
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # once: later look-ups are plain attribute reads
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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

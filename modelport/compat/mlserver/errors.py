"""MLServer's errors (``from mlserver.errors import MLServerError``), as modelport errors.

``MLServerError`` is a :class:`modelport.errors.InferenceError` carrying the HTTP status MLServer gives
it, so a runtime's ``raise InferenceError("...")`` reaches the client as MLServer sends it: REST with
that status and ``{"error": "..."}``, gRPC with the matching status and the same message.
"""

from __future__ import annotations

from typing import Optional

from ... import errors as _core


class MLServerError(_core.InferenceError):
    def __init__(self, msg: str, status_code: int = 400):
        super().__init__(msg, status=status_code)
        self.status_code = status_code


class InvalidModelURI(MLServerError):
    def __init__(self, name: str, model_uri: Optional[str] = None):
        msg = f"Invalid URI specified for model {name}"
        if model_uri:
            msg += f" ({model_uri})"
        super().__init__(msg, 422)


class ModelNotFound(MLServerError):
    def __init__(self, name: str, version: Optional[str] = None):
        msg = f"Model {name} not found" if version is None else f"Model {name} with version {version} not found"
        super().__init__(msg, 404)


class ModelNotReady(MLServerError):
    def __init__(self, name: str, version: Optional[str] = None):
        msg = f"Model {name} is not ready yet." if version is None else f"Model {name} with version {version} is not ready yet."
        super().__init__(msg, 400)


class InferenceError(MLServerError):
    def __init__(self, msg: str):
        super().__init__(msg, 400)


class ModelParametersMissing(MLServerError):
    def __init__(self, model_name: str):
        super().__init__(f"Parameters missing for model {model_name}", 400)


__all__ = ["InferenceError", "InvalidModelURI", "MLServerError", "ModelNotFound", "ModelNotReady", "ModelParametersMissing"]

"""The one adapter between an MLServer custom runtime (``modelport.mlserver.MLModel``) and the data plane.

It is a :class:`modelport.Model`: the repository builds it from model-settings.json like any model,
the runner calls its hooks, and both transports reach it through the same data plane. It converts
modelport's InferRequest to MLServer's ``InferenceRequest`` (tensor data as lists, as MLServer gives
them: JSON data as sent, gRPC/binary data flattened, BYTES as bytes) and the runtime's
``InferenceResponse`` back. MLServer does not check requests against declared metadata, so neither
does this adapter; the metadata still shows it.
"""

from __future__ import annotations

import os
import sys
import uuid
from typing import Any

import numpy as np

from ...errors import InvalidInput
from ...model import Model
from ...settings import ModelSettings
from ...streaming import stream_requested
from ...types import InferOutput, InferRequest, InferResponse, _flatten, array_from_json, bytes_array


def is_mlmodel_class(cls: Any) -> bool:
    """Whether ``cls`` subclasses modelport.mlserver.MLModel (without importing it, or pydantic, if unused)."""
    module = sys.modules.get("modelport.compat.mlserver.model")
    return module is not None and isinstance(cls, type) and issubclass(cls, module.MLModel)


def _mlserver_settings(settings: ModelSettings, implementation: type) -> Any:
    from .settings import ModelParameters, ModelSettings as MLSettings

    p = settings.parameters
    params = ModelParameters(
        # No uri: the model's own folder, as MLServer's repository sets it.
        uri=p.uri or (os.path.abspath(settings.folder) if settings.folder else None), version=p.version, content_type=p.content_type, format=p.format,
        environment_path=p.environment_path, extra=dict(p.extra or {}),
    )
    ml = MLSettings(
        name=settings.name, platform=settings.platform, versions=list(settings.versions),
        inputs=list(settings.inputs), outputs=list(settings.outputs),
        parallel_workers=settings.parallel_workers or None, max_batch_size=settings.max_batch_size,
        max_batch_time=settings.max_batch_time, parameters=params,
        implementation=f"{implementation.__module__}.{implementation.__qualname__}",
    )
    if settings.folder:
        ml._source = os.path.join(os.path.abspath(settings.folder), "model-settings.json")
    return ml


def _overrides(mlmodel: Any, method: str) -> bool:
    """Whether the runtime defines ``method`` itself rather than inheriting MLModel's."""
    from .model import MLModel

    return getattr(type(mlmodel), method) is not getattr(MLModel, method)


def wrap_mlmodel(cls: type, settings: ModelSettings) -> "MLModelAdapter":
    return MLModelAdapter(cls(_mlserver_settings(settings, cls)), settings)


class MLModelAdapter(Model):
    def __init__(self, mlmodel: Any, settings: ModelSettings):
        super().__init__(settings.name)
        self.mlmodel = mlmodel
        self.settings = settings
        self.version = settings.version
        self.platform = settings.platform

        # The server's Prometheus registry, for the runtime's custom metrics (set when it is registered).
        self.metrics_registry: Any = None
        self._metadata: dict[str, Any] | None = None

    def _context(self) -> Any:
        from .metrics import model_context

        return model_context(self.name, self.version, self.metrics_registry)

    # -- lifecycle -----------------------------------------------------------------------------
    async def load(self) -> bool:
        with self._context():
            ready = bool(await self.mlmodel.load())
        self.mlmodel.ready = self.ready = ready
        if ready and _overrides(self.mlmodel, "metadata"):  # the runtime's own answer, asked once
            self._metadata = (await self.mlmodel.metadata()).model_dump(exclude_none=True, mode="json")
        return ready

    async def stop(self) -> None:
        await self.mlmodel.unload()
        self.mlmodel.ready = False

    # -- the request path ---------------------------------------------------------------------
    async def predict(self, payload: Any, headers: dict | None = None, response_headers: dict | None = None) -> Any:
        if not isinstance(payload, InferRequest):
            raise InvalidInput(
                f"Model {self.name} is an MLServer runtime and takes Open Inference Protocol (V2) requests: "
                f"POST /v2/models/{self.name}/infer"
            )
        request = to_inference_request(payload, headers)
        # MLServer hands the requested outputs to the runtime and sends back what it returns, unfiltered.
        payload.request_outputs = None
        if stream_requested.get() and _overrides(self.mlmodel, "predict_stream"):
            return self._stream(request)
        with self._context():
            response = await self.mlmodel.predict(request)
        params = response.parameters
        if params is not None and params.headers and response_headers is not None:
            response_headers.update({str(k): str(v) for k, v in params.headers.items()})
        return from_inference_response(response, self.name)

    async def _stream(self, request: Any) -> Any:
        """The runtime's predict_stream over a stream of one request (what modelport's doors carry)."""

        async def requests() -> Any:
            yield request

        responses = self.mlmodel.predict_stream(requests())
        while True:
            with self._context():  # per step: each may run in another task's context
                try:
                    response = await responses.__anext__()
                except StopAsyncIteration:
                    return
            yield from_inference_response(response, self.name)

    # -- metadata -----------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        if self._metadata is not None:
            return self._metadata
        ml = self.mlmodel.settings
        out: dict[str, Any] = {"name": self.name, "versions": list(ml.versions or []), "platform": ml.platform or ""}
        out["inputs"] = [t.model_dump() for t in (self.mlmodel.inputs or [])]
        out["outputs"] = [t.model_dump() for t in (self.mlmodel.outputs or [])]
        if ml.parameters is not None:  # as MLServer: {} when the model has parameters but no content type
            out["parameters"] = {"content_type": ml.parameters.content_type} if ml.parameters.content_type else {}
        return out


# -- conversions -----------------------------------------------------------------------------------
def _tensor_data(tensor: Any) -> list:
    data = tensor._data
    if data is not None:  # JSON: as the client sent it, as MLServer's REST door gives it
        return data
    array = tensor._array
    return array.ravel().tolist()  # gRPC or binary: flat, BYTES as bytes, as MLServer's gRPC door gives it


def to_inference_request(request: InferRequest, headers: dict | None = None) -> Any:
    from . import types

    inputs = []
    for t in request.inputs:
        params = types.Parameters(**t.parameters) if t.parameters else None
        inputs.append(types.RequestInput.model_construct(
            name=t.name, shape=list(t.shape), datatype=t.datatype, parameters=params,
            data=types.TensorData.model_construct(root=_tensor_data(t)),
        ))
    params = dict(request.parameters or {})
    if headers:
        params["headers"] = dict(headers)
    outputs = None
    if request.request_outputs:
        outputs = [types.RequestOutput(name=o.name, parameters=types.Parameters(**o.parameters) if o.parameters else None)
                   for o in request.request_outputs]
    fields = {"id": request.id or str(uuid.uuid4()), "inputs": inputs}
    if params:
        fields["parameters"] = types.Parameters(**params)
    if outputs is not None:
        fields["outputs"] = outputs
    return types.InferenceRequest.model_construct(**fields)


def _datatype(value: Any) -> str:
    return getattr(value, "value", value)


def _output_array(o: Any) -> np.ndarray:
    data = getattr(o.data, "root", o.data)
    datatype = _datatype(o.datatype)
    if isinstance(data, np.ndarray):
        return data.reshape(o.shape) if datatype != "BYTES" else bytes_array(data.ravel(), o.shape)
    if datatype == "BYTES":
        flat = _flatten(data)
        if len(flat) != int(np.prod(o.shape)):
            raise ValueError(f"Output {o.name!r}: shape {o.shape} needs {int(np.prod(o.shape))} elements, data has {len(flat)}")
        return bytes_array(flat, o.shape)
    return array_from_json(o.name, datatype, o.shape, data)


def from_inference_response(response: Any, model_name: str) -> InferResponse:
    outputs = []
    for o in response.outputs:
        try:
            array = _output_array(o)
        except (InvalidInput, ValueError, TypeError) as exc:  # the runtime's bug, not the client's
            raise RuntimeError(f"Model {model_name} returned an output that does not fit its datatype and shape: {exc}") from None
        params = o.parameters.model_dump() if o.parameters is not None else None
        outputs.append(InferOutput(o.name, list(o.shape), _datatype(o.datatype), array, params))
    params = response.parameters.model_dump() if response.parameters is not None else None
    if params:
        params.pop("headers", None)
    return InferResponse(response.id, response.model_name or model_name, outputs,
                         model_version=response.model_version, parameters=params or None)

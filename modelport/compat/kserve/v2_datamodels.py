"""KServe's ``kserve.protocol.rest.v2_datamodels``: the Open Inference Protocol's REST documents as
pydantic models, for code that builds a request as objects and hands it to
``InferRequest.from_inference_request``. modelport's own REST door does not use them (it parses JSON
straight into :mod:`modelport.types`). Needs pydantic (the ``openai`` or ``mlserver`` extra).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

from ..._optional import import_optional

_pydantic = import_optional("pydantic", extra="openai")
BaseModel = _pydantic.BaseModel

Parameters = Dict[str, Union[bool, int, float, str, Any]]


class ServerLiveResponse(BaseModel):
    live: bool


class ServerReadyResponse(BaseModel):
    ready: bool


class ServerMetadataResponse(BaseModel):
    name: str
    version: str
    extensions: List[str]


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: List[int]


class ListModelsResponse(BaseModel):
    models: List[str]


class ModelMetadataResponse(BaseModel):
    name: str
    versions: Optional[List[str]] = None
    platform: str
    inputs: List[MetadataTensor]
    outputs: List[MetadataTensor]


class ModelReadyResponse(BaseModel):
    name: str
    ready: bool


class RequestInput(BaseModel):
    name: str
    shape: List[int]
    datatype: str
    parameters: Optional[Parameters] = None
    data: List


class RequestOutput(BaseModel):
    name: str
    parameters: Optional[Parameters] = None


class ResponseOutput(BaseModel):
    name: str
    shape: List[int]
    datatype: str
    parameters: Optional[Parameters] = None
    data: List


class InferenceRequest(BaseModel):
    id: Optional[str] = None
    parameters: Optional[Parameters] = None
    inputs: List[RequestInput]
    outputs: Optional[List[RequestOutput]] = None


class InferenceResponse(BaseModel):
    model_name: str
    model_version: Optional[str] = None
    id: str
    parameters: Optional[Parameters] = None
    outputs: List[ResponseOutput]


__all__ = [
    "InferenceRequest",
    "InferenceResponse",
    "ListModelsResponse",
    "MetadataTensor",
    "ModelMetadataResponse",
    "ModelReadyResponse",
    "Parameters",
    "RequestInput",
    "RequestOutput",
    "ResponseOutput",
    "ServerLiveResponse",
    "ServerMetadataResponse",
    "ServerReadyResponse",
]

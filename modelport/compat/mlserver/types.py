"""MLServer's request and response types, with its field names (``from mlserver import types``).

Pydantic models, as MLServer's are, so user code that builds, reads, ``model_dump``s or copies them
works unchanged. They exist only at the edge of an MLServer-style runtime: the adapter in
:mod:`modelport.compat.mlserver.adapter` converts them to and from modelport's own types.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Dict, List, Optional, Union

from ..._optional import import_optional

pydantic = import_optional("pydantic", extra="mlserver")
from pydantic import ConfigDict, Field, RootModel  # noqa: E402


class BaseModel(pydantic.BaseModel):
    """Dumps leave out unset and None fields, as MLServer's payloads do."""

    model_config = ConfigDict(protected_namespaces=(), use_enum_values=True)

    def model_dump(self, exclude_unset: bool = True, exclude_none: bool = True, **kwargs: Any) -> Dict[str, Any]:
        return super().model_dump(exclude_unset=exclude_unset, exclude_none=exclude_none, **kwargs)

    def model_dump_json(self, exclude_unset: bool = True, exclude_none: bool = True, **kwargs: Any) -> str:
        return super().model_dump_json(exclude_unset=exclude_unset, exclude_none=exclude_none, **kwargs)

    # pydantic v1 spellings that MLServer 1.x code still calls
    def dict(self, **kwargs: Any) -> Dict[str, Any]:  # type: ignore[override]
        return self.model_dump(**kwargs)

    def json(self, **kwargs: Any) -> str:  # type: ignore[override]
        return self.model_dump_json(**kwargs)


class Datatype(Enum):
    BOOL = "BOOL"
    UINT8 = "UINT8"
    UINT16 = "UINT16"
    UINT32 = "UINT32"
    UINT64 = "UINT64"
    INT8 = "INT8"
    INT16 = "INT16"
    INT32 = "INT32"
    INT64 = "INT64"
    FP16 = "FP16"
    FP32 = "FP32"
    FP64 = "FP64"
    BYTES = "BYTES"


class Parameters(BaseModel):
    """Free-form parameters; ``content_type`` and ``headers`` are the ones MLServer reads."""

    model_config = ConfigDict(extra="allow")
    content_type: Optional[str] = None
    headers: Optional[Dict[str, Any]] = None


class TensorData(RootModel[Union[List, Any]]):
    root: Union[List, Any] = Field(..., title="TensorData")

    def __iter__(self):
        return iter(self.root)

    def __getitem__(self, idx):
        return self.root[idx]

    def __len__(self):
        return len(self.root)


class MetadataTensor(BaseModel):
    name: str
    datatype: Datatype
    shape: List[int]
    parameters: Optional[Parameters] = None


class RequestInput(BaseModel):
    name: str
    shape: List[int]
    datatype: Datatype
    parameters: Optional[Parameters] = None
    data: TensorData


class RequestOutput(BaseModel):
    name: str
    parameters: Optional[Parameters] = None


class ResponseOutput(BaseModel):
    name: str
    shape: List[int]
    datatype: Datatype
    parameters: Optional[Parameters] = None
    data: TensorData


class InferenceRequest(BaseModel):
    id: Optional[str] = None
    parameters: Optional[Parameters] = None
    inputs: List[RequestInput]
    outputs: Optional[List[RequestOutput]] = None


class InferenceResponse(BaseModel):
    model_name: str
    model_version: Optional[str] = None
    id: Optional[str] = None
    parameters: Optional[Parameters] = None
    outputs: List[ResponseOutput]


class InferenceErrorResponse(BaseModel):
    error: Optional[str] = None


class MetadataServerResponse(BaseModel):
    name: str
    version: str
    extensions: List[str]


class MetadataServerErrorResponse(BaseModel):
    error: str


class MetadataModelResponse(BaseModel):
    name: str
    versions: Optional[List[str]] = None
    platform: str
    inputs: Optional[List[MetadataTensor]] = None
    outputs: Optional[List[MetadataTensor]] = None
    parameters: Optional[Parameters] = None


class MetadataModelErrorResponse(BaseModel):
    error: str


class RepositoryIndexRequest(BaseModel):
    ready: Optional[bool] = None


class State(Enum):
    UNKNOWN = "UNKNOWN"
    READY = "READY"
    UNAVAILABLE = "UNAVAILABLE"
    LOADING = "LOADING"
    UNLOADING = "UNLOADING"


class RepositoryIndexResponseItem(BaseModel):
    name: str
    version: Optional[str] = None
    state: State
    reason: str


class RepositoryIndexResponse(RootModel[List[RepositoryIndexResponseItem]]):
    root: List[RepositoryIndexResponseItem] = Field(..., title="RepositoryIndexResponse")

    def __iter__(self):
        return iter(self.root)

    def __getitem__(self, idx):
        return self.root[idx]

    def __len__(self):
        return len(self.root)


__all__ = [
    "BaseModel", "Datatype", "InferenceErrorResponse", "InferenceRequest", "InferenceResponse",
    "MetadataModelErrorResponse", "MetadataModelResponse", "MetadataServerErrorResponse",
    "MetadataServerResponse", "MetadataTensor", "Parameters", "RepositoryIndexRequest",
    "RepositoryIndexResponse", "RepositoryIndexResponseItem", "RequestInput", "RequestOutput",
    "ResponseOutput", "State", "TensorData",
]

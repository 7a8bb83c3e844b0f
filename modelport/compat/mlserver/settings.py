"""MLServer's settings classes (``from mlserver.settings import ModelSettings``), with its field names.

What a runtime reads from ``self.settings`` (``name``, ``parameters.uri``, ``parameters.extra``, ...).
The server itself is configured by :mod:`modelport.settings`, which reads the same files and
``MLSERVER_*`` variables; these classes only describe a model to its runtime.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from pydantic import ConfigDict, Field, PrivateAttr

from .types import BaseModel, MetadataTensor


class _Settings(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=(), use_enum_values=True, populate_by_name=True)


class ModelParameters(_Settings):
    uri: Optional[str] = None
    version: Optional[str] = None
    environment_path: Optional[str] = None
    environment_tarball: Optional[str] = None
    inference_pool_gid: Optional[str] = None
    autogenerate_inference_pool_gid: bool = False
    format: Optional[str] = None
    content_type: Optional[str] = None
    extra: Optional[Dict[str, Any]] = {}


class ModelSettings(_Settings):
    name: str = ""
    platform: str = ""
    versions: List[str] = []
    inputs: List[MetadataTensor] = []
    outputs: List[MetadataTensor] = []
    parallel_workers: Optional[int] = None
    warm_workers: bool = False
    max_batch_size: int = 0
    max_batch_time: float = 0.0
    parameters: Optional[ModelParameters] = None
    cache_enabled: bool = False
    # MLServer keeps the class path under "implementation"; a runtime rarely reads it.
    implementation_: Optional[Any] = Field(default=None, alias="implementation")
    # The model-settings.json this came from: relative URIs resolve against its folder.
    _source: Optional[str] = PrivateAttr(default=None)

    @property
    def version(self) -> Optional[str]:
        return self.parameters.version if self.parameters else None

    @property
    def implementation(self) -> Any:
        return self.implementation_


class Settings(_Settings):
    """MLServer's server settings, for code that builds or reads them; modelport reads settings.json itself."""

    debug: bool = False
    parallel_workers: int = 1
    parallel_workers_timeout: int = 5
    environments_dir: str = ""
    model_repository_root: str = "."
    load_models_at_startup: bool = True
    server_name: str = "mlserver"
    extensions: List[str] = []
    host: str = "0.0.0.0"
    http_port: int = 8080
    root_path: str = ""
    grpc_port: int = 8081
    grpc_max_message_length: Optional[int] = None
    metrics_endpoint: Optional[str] = "/metrics"
    metrics_port: int = 8082
    use_structured_logging: bool = False
    cache_enabled: bool = False
    cache_size: int = 100
    gzip_enabled: bool = True


__all__ = ["ModelParameters", "ModelSettings", "Settings"]

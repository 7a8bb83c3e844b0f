"""Clients for modelport (and any Open Inference Protocol / KServe V1 server): REST and gRPC, each as an
async and a blocking pair with the same methods. KServe's SDK names are exported too::

    from modelport.client import InferenceRESTClient, RESTConfig

    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=10))
    response = await client.infer("http://127.0.0.1:8080", request, model_name="iris")

Every failure is a :class:`ClientError` (see :mod:`modelport.client.errors`).
"""

from ._grpc import AsyncGRPCClient, GRPCClient
from ._rest import AsyncRESTClient, RESTClient, RESTConfig
from .errors import ClientError, ConnectionFailed, InvalidResponse, RequestTimeout, ServerError, TLSError

# KServe's names for the async clients, and sync names in the same style.
InferenceRESTClient = AsyncRESTClient
InferenceGRPCClient = AsyncGRPCClient
InferenceRESTClientSync = RESTClient
InferenceGRPCClientSync = GRPCClient

__all__ = [
    "AsyncGRPCClient",
    "AsyncRESTClient",
    "ClientError",
    "ConnectionFailed",
    "GRPCClient",
    "InferenceGRPCClient",
    "InferenceGRPCClientSync",
    "InferenceRESTClient",
    "InferenceRESTClientSync",
    "InvalidResponse",
    "RESTClient",
    "RESTConfig",
    "RequestTimeout",
    "ServerError",
    "TLSError",
]

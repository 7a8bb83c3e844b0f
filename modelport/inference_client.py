"""``kserve.inference_client`` under modelport: KServe's client names (see :mod:`modelport.client`)."""

from .client import InferenceGRPCClient, InferenceRESTClient, RESTConfig

__all__ = ["InferenceGRPCClient", "InferenceRESTClient", "RESTConfig"]

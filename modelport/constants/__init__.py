"""``kserve.constants`` under modelport: ``from modelport.constants.constants import PredictorProtocol``."""

from . import constants  # noqa: F401  (kserve.constants.constants)
from .constants import (
    DEFAULT_GRPC_PORT,
    DEFAULT_HTTP_PORT,
    INFERENCE_CONTENT_LENGTH_HEADER,
    KSERVE_LOGLEVEL,
    MAX_GRPC_MESSAGE_LENGTH,
    V1_ROUTE_PREFIX,
    V2_ROUTE_PREFIX,
    PredictorProtocol,
)

__all__ = [
    "DEFAULT_GRPC_PORT",
    "DEFAULT_HTTP_PORT",
    "INFERENCE_CONTENT_LENGTH_HEADER",
    "KSERVE_LOGLEVEL",
    "MAX_GRPC_MESSAGE_LENGTH",
    "PredictorProtocol",
    "V1_ROUTE_PREFIX",
    "V2_ROUTE_PREFIX",
]

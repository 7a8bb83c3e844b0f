"""``kserve.constants.constants`` under modelport."""

from ..compat.kserve.flags import (  # noqa: F401
    DEFAULT_GRPC_PORT,
    DEFAULT_HTTP_PORT,
    INFERENCE_CONTENT_LENGTH_HEADER,
    KSERVE_LOGLEVEL,
    MAX_GRPC_MESSAGE_LENGTH,
    V1_ROUTE_PREFIX,
    V2_ROUTE_PREFIX,
)
from ..model import PredictorProtocol  # noqa: F401

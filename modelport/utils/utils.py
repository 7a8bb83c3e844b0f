"""``kserve.utils.utils`` under modelport: ``from modelport.utils.utils import get_predict_input``."""

from ..wire.cloudevents import has_binary_headers, is_structured_cloudevent
from ..compat.kserve.flags import cpu_count, generate_uuid, is_v1, is_v2, strtobool, to_headers
from ..predict_io import get_predict_input, get_predict_response
from ..types import from_np_dtype, to_np_dtype

__all__ = [
    "cpu_count",
    "from_np_dtype",
    "generate_uuid",
    "get_predict_input",
    "get_predict_response",
    "has_binary_headers",
    "is_structured_cloudevent",
    "is_v1",
    "is_v2",
    "strtobool",
    "to_headers",
    "to_np_dtype",
]

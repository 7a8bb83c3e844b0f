"""Production controls around the data plane: API keys, rate limits, response cache, CORS, input
contracts, and the admin request rules (``origin``).

The composition root (``modelport.serving.compose``) builds one :class:`Controls` from the server settings and
plugs it in three places, each deciding per request from the door's declaration (``modelport.doors``): :class:`ControlledRestApp` (REST door), :class:`GrpcControls` (gRPC door: checks run by its one handler wrapper)
and :class:`ControlledDataPlane` (per-model rate limit, contract and cache around inference).
"""

from .auth import ApiKey, KeyStore, load_keys
from .cache import ResponseCache, cache_key
from .cors import Cors
from .controls import Controls
from .ratelimit import Limit, TokenBucket, parse_limit

__all__ = [
    "ApiKey", "Controls", "Cors", "KeyStore", "Limit", "ResponseCache", "TokenBucket",
    "cache_key", "load_keys", "parse_limit",
]

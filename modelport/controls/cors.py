"""CORS for the REST door: off unless ``cors_origins`` is set.

A preflight (OPTIONS with Origin and Access-Control-Request-Method) from an allowed origin gets 204
with the allowed methods and headers; one from another origin gets 403 and no CORS headers. Every
other response to an allowed origin carries Access-Control-Allow-Origin (and Vary: Origin).
"""

from __future__ import annotations

from typing import Any

from ..settings import SettingsError

DEFAULT_METHODS = "GET, POST, OPTIONS"
DEFAULT_HEADERS = "authorization, content-type, x-api-key, inference-header-content-length, x-request-id, x-request-timeout"


def _names(value: Any, setting: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise SettingsError(f"Setting {setting}: must be a list of strings or a comma-separated string")


class Cors:
    def __init__(self, origins: Any, methods: Any = None, headers: Any = None, max_age: int = 600, credentials: bool = False):
        self.origins = {o.rstrip("/") for o in _names(origins, "cors_origins")}
        self.any_origin = "*" in self.origins
        if self.any_origin and credentials:
            raise SettingsError("Setting cors_allow_credentials: cannot be used with cors_origins '*'")
        self.credentials = credentials
        self.methods = ", ".join(_names(methods, "cors_methods")).upper() or DEFAULT_METHODS
        self.headers = ", ".join(_names(headers, "cors_headers")).lower() or DEFAULT_HEADERS
        self.max_age = max_age

    def allows(self, origin: str | None) -> bool:
        return bool(origin) and (self.any_origin or origin.rstrip("/") in self.origins)

    def response_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        value = b"*" if self.any_origin and not self.credentials else origin.encode("latin-1")
        out = [(b"access-control-allow-origin", value), (b"vary", b"origin")]
        if self.credentials:
            out.append((b"access-control-allow-credentials", b"true"))
        return out

    def preflight_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        return self.response_headers(origin) + [
            (b"access-control-allow-methods", self.methods.encode()),
            (b"access-control-allow-headers", self.headers.encode()),
            (b"access-control-max-age", str(self.max_age).encode()),
        ]


__all__ = ["Cors"]

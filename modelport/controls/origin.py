"""Who may send an admin (repository) request: the one rule, in one place.

A web page can make a browser send a "simple" cross-site POST (form or text body, no preflight) to
a server on localhost. So admin POSTs take a JSON body or none, and a request whose ``Origin`` is not
the server's own (the ``Host`` it was sent to) is refused unless that origin is explicitly allowed
(``allowed_origins``, for a CORS policy to pass in). Clients that are not browsers send no Origin.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from urllib.parse import urlsplit

from ..errors import ErrorCode, ModelportError

_DEFAULT_PORTS = {"http": 80, "https": 443}


class AdminRequestRefused(ModelportError):
    """An admin request refused for its form (415) or its origin (403); ``status`` is the HTTP status."""

    code = ErrorCode.INVALID_INPUT

    def __init__(self, reason: str, status: int):
        super().__init__(reason)
        self.status = status


def check_admin_request(headers: Mapping[str, str], has_body: bool, allowed_origins: Collection[str] = ()) -> None:
    """Raise AdminRequestRefused unless the request may change or read the model repository."""
    content_type = headers.get("content-type")
    if content_type is not None and has_body:
        media = content_type.split(";", 1)[0].strip().lower()
        if media != "application/json":
            raise AdminRequestRefused(
                f"Repository requests take a JSON body (Content-Type: application/json) or no body, not {media or 'an empty type'!r}",
                415,
            )
    origin = headers.get("origin")
    if origin is None or origin in allowed_origins:
        return
    if not same_origin(origin, headers.get("host", "")):
        raise AdminRequestRefused(
            f"Repository requests from origin {origin!r} are not allowed; send them from the server's own origin "
            "or from a client that is not a browser",
            403,
        )


def same_origin(origin: str, host: str) -> bool:
    """Whether an ``Origin`` header names the ``Host`` the request was sent to: same host and port, the
    origin's scheme giving the default port. The scheme itself is not compared, so an https page
    served through a TLS-terminating proxy that keeps the Host header still counts as the server's own."""
    try:
        parts = urlsplit(origin.strip())
        scheme, origin_host, origin_port = parts.scheme.lower(), (parts.hostname or ""), parts.port
        target = urlsplit(f"//{host.strip()}")
        target_host, target_port = target.hostname or "", target.port
    except ValueError:  # "null", a bad port, garbage: not our origin
        return False
    default = _DEFAULT_PORTS.get(scheme)
    if not origin_host or default is None:
        return False
    return origin_host == target_host and (origin_port or default) == (target_port or default)


__all__ = ["AdminRequestRefused", "check_admin_request", "same_origin"]

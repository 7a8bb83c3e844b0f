"""Who may send an admin (repository) request: the one rule, in one place.

A web page can make a browser send a "simple" cross-site POST (form or text body, no preflight) to
a server on localhost. So admin POSTs take a JSON body or none, and a request whose ``Origin`` is not
the server's own (the ``Host`` it was sent to) is refused unless that origin is explicitly allowed
(``allowed_origins``, for a CORS policy to pass in). Clients that are not browsers send no Origin.

DNS rebinding defeats that comparison: a page at evil.example whose name is made to resolve to this
server sends Origin and Host both evil.example. So at every admin door (``HostRule``, applied by
the REST app to the doors modelport/doors.py declares ``admin``), a browser's request (one with an
Origin) must also name this server in Host: a loopback name or address, the address it was sent to,
or a name in ``allowed_hosts``. The server skips the rule when api_keys are set: an admin door then
needs an admin key, which a rebinding page cannot hold. gRPC needs no such rule: browsers cannot
speak it (no trailers, no h2c), so no page can reach it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping
from typing import Any
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


class HostRule:
    """Which ``Host`` an admin request from a browser may name (see the module's docstring)."""

    def __init__(self, allowed_hosts: Any = None, bound_host: str | None = None):
        from ..settings import SettingsError
        from .cors import _names

        hosts = set()
        for name in _names(allowed_hosts, "allowed_hosts"):
            if name != "*" and ("/" in name or "@" in name or not _hostname(name)):
                raise SettingsError(f"Setting allowed_hosts: {name!r} is not a host name (give the name alone, e.g. models.example.com)")
            hosts.add("*" if name == "*" else _hostname(name))
        self.any_host = "*" in hosts
        if bound_host and not _wildcard(bound_host):  # the name or address the server listens on
            hosts.add(_hostname(bound_host) or bound_host.lower())
        self.hosts = frozenset(hosts)

    def check(self, headers: Mapping[str, str], local_address: str | None) -> None:
        """AdminRequestRefused (403) for a browser's request whose Host is not this server."""
        if "origin" not in headers or self.any_host:
            return  # not a browser (a browser always sends Origin on a POST), or every host allowed
        host = _hostname(headers.get("host", ""))
        if host in self.hosts or _loopback(host) or (local_address and _same_address(host, local_address)):
            return
        raise AdminRequestRefused(
            f"Admin requests from a browser (with an Origin header) for host {host or '(none)'!r} are not allowed: "
            "send them to a loopback address or the server's own address, list the host in the setting "
            "allowed_hosts, or use a client that is not a browser", 403)


def _hostname(host: str) -> str:
    """The lowercased name or address of a Host header value ("" if it has none): no port, no brackets."""
    try:
        return (urlsplit(f"//{host.strip()}").hostname or "").rstrip(".")
    except ValueError:  # a bad port, unbalanced brackets
        return ""


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always the loopback
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return host in ("", "*")


def _same_address(host: str, address: str) -> bool:
    """Whether Host is the address literal the connection arrived at (a name never is: rebinding needs one)."""
    try:
        return ipaddress.ip_address(host) == ipaddress.ip_address(address)
    except ValueError:
        return False


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


__all__ = ["AdminRequestRefused", "HostRule", "check_admin_request", "same_origin"]

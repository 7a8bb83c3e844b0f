"""API keys: who is calling, and whether that caller may do this.

Keys are kept as SHA-256 digests only (a settings file may hold the digest and never the key).
A presented key is hashed and compared against every known digest with ``hmac.compare_digest``,
without stopping at the first match, so the time taken says nothing about which key is close.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..doors import ADMIN, Door
from ..errors import PermissionDenied, Unauthenticated
from ..settings import SettingsError

SCOPES = ("infer", "admin")

# The key of the request being served, set by the controls at the doors that need it later: those
# whose model is named in the body (checked once it is parsed) and aggregate views (filtered).
# Every request runs in its own task, so a value never outlives its request.
CALLER: ContextVar["ApiKey | None"] = ContextVar("modelport_caller", default=None)


@dataclass(frozen=True)
class ApiKey:
    name: str
    digest: bytes
    scopes: frozenset[str]
    models: frozenset[str] | None  # None: every model

    def may_call(self, model: str) -> bool:
        return self.models is None or model in self.models


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _parse_key(item: Any, index: int) -> ApiKey:
    if isinstance(item, str):  # a bare key: every scope, every model
        item = {"key": item}
    if not isinstance(item, dict):
        raise SettingsError(f"Setting api_keys: entry {index} must be a key string or an object")
    unknown = set(item) - {"key", "sha256", "name", "scopes", "models"}
    if unknown:
        raise SettingsError(f"Setting api_keys: entry {index} has unknown field(s) {', '.join(sorted(unknown))}")
    if ("key" in item) == ("sha256" in item):
        raise SettingsError(f"Setting api_keys: entry {index} needs exactly one of \"key\" or \"sha256\"")
    if "key" in item:
        if not isinstance(item["key"], str) or not item["key"]:
            raise SettingsError(f"Setting api_keys: entry {index} has an empty key")
        raw = digest(item["key"])
    else:
        try:
            raw = bytes.fromhex(str(item["sha256"]))
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise SettingsError(f"Setting api_keys: entry {index}: sha256 must be 64 hex digits")
    scopes = item.get("scopes", list(SCOPES))
    if isinstance(scopes, str):
        scopes = [s.strip() for s in scopes.split(",") if s.strip()]
    if not isinstance(scopes, list) or not scopes or any(s not in SCOPES for s in scopes):
        raise SettingsError(f"Setting api_keys: entry {index}: scopes must be a non-empty list of {', '.join(SCOPES)}")
    models = item.get("models")
    if models is not None and (not isinstance(models, list) or not all(isinstance(m, str) for m in models)):
        raise SettingsError(f"Setting api_keys: entry {index}: models must be a list of model names")
    name = str(item.get("name") or f"key{index}")
    return ApiKey(name, raw, frozenset(scopes), frozenset(models) if models is not None else None)


def _as_list(value: Any, where: str) -> list:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise SettingsError(f"{where}: not valid JSON: {exc}") from None
        else:  # "key1,key2": bare keys from an environment variable
            value = [k.strip() for k in text.split(",") if k.strip()]
    if not isinstance(value, list):
        raise SettingsError(f"{where}: must be a list of keys")
    return value


def load_keys(inline: Any = None, path: str | None = None) -> list[ApiKey]:
    """Keys from the ``api_keys`` setting (a list, or its JSON text) and the ``api_keys_path`` (a JSON list)."""
    items: list = []
    if inline:
        items += _as_list(inline, "Setting api_keys")
    if path:
        try:
            text = Path(os.path.expanduser(path)).read_text()
        except OSError as exc:
            raise SettingsError(f"Setting api_keys_path: cannot read {path}: {exc.strerror or exc}") from None
        items += _as_list(text.strip() if text.strip().startswith("[") else text.replace("\n", ","), f"api_keys_path {path}")
    keys = [_parse_key(item, i) for i, item in enumerate(items)]
    names = [k.name for k in keys]
    if len(set(names)) != len(names):
        raise SettingsError("Setting api_keys: key names must be unique")
    return keys


class KeyStore:
    def __init__(self, keys: Iterable[ApiKey]):
        self.keys = tuple(keys)
        # Key texts already found valid, so that a caller's next requests skip the hash and the
        # comparisons. Only valid texts go in, and a key has one (another text with its digest would
        # be a SHA-256 collision), so this stays as small as the key list whatever clients send. The
        # look-up's timing says only whether a text is a valid key, as the answer does: str hashes are
        # keyed per process, so no part of a key can be probed through it. Invalid texts take the
        # hash-and-compare-all path every time.
        self._valid: dict[str, ApiKey] = {}

    def __bool__(self) -> bool:
        return bool(self.keys)

    def authenticate(self, headers: dict[str, str]) -> ApiKey:
        """The key the request carries (``Authorization: Bearer`` or ``X-API-Key``), or Unauthenticated."""
        presented = _presented(headers)
        if presented is None:
            raise Unauthenticated("Missing API key: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
        found = self._valid.get(presented)
        if found is not None:
            return found
        d = digest(presented)
        for key in self.keys:  # every digest is compared: no early exit
            if hmac.compare_digest(d, key.digest):
                found = key
        if found is None:
            raise Unauthenticated("Invalid API key")
        if len(self._valid) < len(self.keys):
            self._valid[presented] = found
        return found


def authorize(key: ApiKey, door: Door, model: str | None) -> None:
    """PermissionDenied unless ``key`` has the scope the door's kind needs and may call ``model``.

    Admin doors need ``admin``; every other door ``infer`` (or ``admin``, which covers everything).
    The model list applies at every door that names a model, whatever its kind."""
    scope = "admin" if door.kind == ADMIN else "infer"
    if scope not in key.scopes and "admin" not in key.scopes:
        raise PermissionDenied(f"API key {key.name!r} lacks the {scope!r} scope")
    if model is not None and not key.may_call(model):
        raise PermissionDenied(f"API key {key.name!r} may not call model {model!r}")
    if door.model == "every" and key.models is not None:
        raise PermissionDenied(f"API key {key.name!r} is limited to some models; this view shows every model")


def authorize_model(model: str) -> None:
    """At a door whose model is named in the body: PermissionDenied unless the caller may call it."""
    key = CALLER.get()
    if key is not None and not key.may_call(model):
        raise PermissionDenied(f"API key {key.name!r} may not call model {model!r}")


def visible(names: Iterable[str]) -> list[str]:
    """At an aggregate view: the model names the caller may see (all of them without a limited key)."""
    key = CALLER.get()
    if key is None or key.models is None:
        return list(names)
    return [n for n in names if n in key.models]


def may_see(name: str) -> bool:
    key = CALLER.get()
    return key is None or key.may_call(name)


def _presented(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None

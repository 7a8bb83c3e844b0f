"""One redaction for everything an operator view shows (the console, and whatever else calls it: the
repository index's reasons, error messages, logs meant for people).

``redact(value, root)`` walks dicts, lists and tuples at any depth and:

- masks the value of any key named like a secret (token, password, secret, key, credential, signature,
  authorization, cookie, ``sig``), whatever it holds;
- removes credentials from URLs in any string: ``s3://user:pass@host`` → ``s3://***@host``, and secret
  query parameters (``?sig=…``, ``X-Amz-Signature=…``, ``token=…``) → ``sig=***``;
- shows absolute filesystem paths relative to ``root`` (the models folder; the folder itself by its
  name), or by their last component when outside it.

Pure: no I/O except one cached listing of ``/`` (so that ``/v2/models/iris/infer`` in a message is not
taken for a file path: only paths whose first component exists on this machine are rewritten).
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Any

MASK = "***"

# Key names that hold secrets: substrings (api_key, hf_token, db_password, X-Amz-Credential...) and
# whole names for the short ones (Azure SAS "sig").
_SECRET_PARTS = ("token", "passw", "pwd", "secret", "key", "credential", "signature", "authoriz", "cookie")
_SECRET_NAMES = frozenset(("sig", "auth", "pass"))

# scheme://userinfo@host: the userinfo (user, user:password, or a token alone) is the credential.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"<>]+@")
# ?name=value or &name=value in a URL (or a bare query string).
_QUERY_PARAM = re.compile(r"([?&;])([^=&#\s'\"<>]+)=([^&#\s'\"<>]*)")
_FILE_URL = re.compile(r"file://(/[^\s'\"<>]*)")
# An absolute POSIX path in text, not the path part of a URL (the same shape as errors.public_reason).
_ABS_PATH = re.compile(r"(?<![\w:/.~%-])/(?:[^\s'\"`:,;()\[\]{}<>/]+/)*[^\s'\"`:,;()\[\]{}<>/]+/?")


def is_secret_name(name: Any) -> bool:
    """True for a key named like a secret (case-insensitive)."""
    low = str(name).lower()
    return low in _SECRET_NAMES or any(part in low for part in _SECRET_PARTS)


def redact(value: Any, root: str | os.PathLike | None = None) -> Any:
    """A copy of ``value`` fit to show an operator: secrets masked at any depth, URL credentials removed,
    absolute paths relative to ``root`` (see the module docstring). Other values are returned as they are."""
    base = _base(root)
    return _walk(value, base)


def redact_text(text: str, root: str | os.PathLike | None = None) -> str:
    """``redact`` for one string (a reason, an error message, a log line)."""
    return _text(text, _base(root))


def _base(root: str | os.PathLike | None) -> tuple[str, ...]:
    if not root:
        return ()
    absolute = os.path.abspath(os.fspath(root)).rstrip(os.sep)
    return tuple({absolute, os.path.realpath(absolute).rstrip(os.sep)})


def _walk(value: Any, base: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        # A flag (cors_allow_credentials: false) is no secret; anything else under a secret's name is.
        return {k: (MASK if v not in (None, "", [], {}) and not isinstance(v, bool) and is_secret_name(k) else _walk(v, base))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_walk(v, base) for v in value) if isinstance(value, list) else tuple(_walk(v, base) for v in value)
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        return _text(value, base)
    return value


def redact_credentials(text: str) -> str:
    """URL credentials and secret query parameters masked; everything else (paths included) kept."""
    if "@" in text:
        text = _URL_USERINFO.sub(lambda m: m.group(1) + MASK + "@", text)
    if "=" in text:
        text = _QUERY_PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}={MASK}" if is_secret_name(m.group(2)) else m.group(0), text)
    return text


def _text(text: str, base: tuple[str, ...]) -> str:
    text = redact_credentials(text)
    if "/" in text:
        text = _paths(text, base)
    return text


def _paths(text: str, base: tuple[str, ...]) -> str:
    if "file://" in text:  # file:///srv/models/x: the path part is a path like any other
        text = _FILE_URL.sub(lambda m: "file://" + _ABS_PATH.sub(lambda p: _shown(p.group(0), base), m.group(1)), text)
    return _ABS_PATH.sub(lambda m: _shown(m.group(0), base), text)


def _shown(path: str, base: tuple[str, ...]) -> str:
    bare = path.rstrip("/")
    first = bare.split("/", 2)[1] if bare.count("/") >= 1 else ""
    if not first or first not in _top_level():
        return path  # a URL route or some other slash-word, not a file on this machine
    for root in base:
        if bare == root:
            return os.path.basename(root) or "/"
        if bare.startswith(root + "/"):
            return bare[len(root) + 1:]
    return os.path.basename(bare)


@lru_cache(maxsize=1)
def _top_level() -> frozenset[str]:
    try:
        return frozenset(os.listdir("/"))
    except OSError:
        return frozenset(("home", "tmp", "var", "srv", "opt", "usr", "mnt", "data", "root", "etc", "models"))


__all__ = ["MASK", "is_secret_name", "redact", "redact_credentials", "redact_text"]

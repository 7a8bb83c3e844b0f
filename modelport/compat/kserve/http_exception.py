"""fastapi's and Starlette's ``HTTPException`` raised by a model's hook, as KServe answers it: its
status and ``{"detail": ...}``. Matched by duck typing (the class comes from a fastapi or starlette
module and carries ``status_code`` and ``detail``), so neither package is a dependency.
"""

from __future__ import annotations

from typing import Any


def http_exception(exc: BaseException) -> tuple[int, Any, dict[str, str]] | None:
    """``(status, detail, headers)`` when ``exc`` is a fastapi/Starlette HTTPException, else None."""
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
        return None
    if not any(c.__module__.split(".", 1)[0] in ("fastapi", "starlette") for c in type(exc).__mro__):
        return None
    if not hasattr(exc, "detail"):
        return None
    headers = getattr(exc, "headers", None) or {}
    return status, exc.detail, dict(headers) if isinstance(headers, dict) else {}


__all__ = ["http_exception"]

"""MLServer's runtime helpers (``from mlserver.utils import get_model_uri``)."""

from __future__ import annotations

import os
import urllib.parse
import uuid
from typing import Any, Dict, List, Optional

from .errors import InvalidModelURI
from .settings import ModelSettings


def to_absolute_path(model_settings: ModelSettings, uri: str) -> str:
    """``uri`` resolved against the folder of the model's model-settings.json; without one, unchanged
    (relative to the working folder), as MLServer does."""
    source = model_settings._source
    if not source:
        return uri
    return os.path.normpath(os.path.join(os.path.dirname(source), uri))


async def get_model_uri(settings: ModelSettings, wellknown_filenames: List[str] = []) -> str:  # noqa: B006 - MLServer's signature
    """The model's ``parameters.uri`` as a local path: a file, else the first well-known file in the
    folder, else the folder itself; a remote URI (``s3://...``) unchanged."""
    uri = settings.parameters.uri if settings.parameters else None
    if not uri:
        raise InvalidModelURI(settings.name)
    parts = urllib.parse.urlparse(uri, scheme="file")
    if parts.scheme != "file":
        return uri
    path = to_absolute_path(settings, parts.path)
    if os.path.isfile(path):
        return path
    if os.path.isdir(path):
        for name in wellknown_filenames:
            candidate = os.path.join(path, name)
            if os.path.isfile(candidate):
                return candidate
        return path
    raise InvalidModelURI(settings.name, path)


def insert_headers(inference_request: Any, headers: Dict[str, str]) -> Any:
    """``headers`` put into the request's ``parameters.headers`` (where a runtime reads them)."""
    from .types import Parameters

    if inference_request.parameters is None:
        inference_request.parameters = Parameters()
    inference_request.parameters.headers = headers
    return inference_request


def install_uvloop_event_loop() -> None:
    """uvloop as the event loop policy, when it is installed (modelport's server uses it anyway)."""
    import asyncio

    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def extract_headers(inference_response: Any) -> Optional[Dict[str, str]]:
    """The headers a runtime put in ``parameters.headers``, taken out of the response (MLServer sends
    them as HTTP headers or gRPC metadata, not in the body)."""
    parameters = inference_response.parameters
    if parameters is None or getattr(parameters, "headers", None) is None:
        return None
    headers = parameters.headers
    parameters.headers = None
    return headers


def generate_uuid() -> str:
    return str(uuid.uuid4())


__all__ = ["extract_headers", "insert_headers", "install_uvloop_event_loop", "generate_uuid", "get_model_uri", "to_absolute_path"]

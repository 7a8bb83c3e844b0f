"""MLServer's runtime helpers (``from mlserver.utils import get_model_uri``)."""

from __future__ import annotations

import os
import urllib.parse
import uuid
from typing import List

from .errors import InvalidModelURI
from .settings import ModelSettings


def to_absolute_path(model_settings: ModelSettings, uri: str) -> str:
    """``uri`` resolved against the folder of the model's model-settings.json (or the working folder)."""
    source = model_settings._source
    if os.path.isabs(uri) or not source:
        return os.path.abspath(uri)
    return os.path.abspath(os.path.join(os.path.dirname(source), uri))


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


def generate_uuid() -> str:
    return str(uuid.uuid4())


__all__ = ["generate_uuid", "get_model_uri", "to_absolute_path"]

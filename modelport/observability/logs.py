"""Structured logs: JSON lines carrying the current request's id, model, version and protocol."""

from __future__ import annotations

import json
import logging
import time

from .context import current

ACCESS_LOGGER = "modelport.access"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, and inside a request its context."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        info = current.get()
        if info is not None:
            doc["request_id"] = info.request_id
            doc["protocol"] = info.protocol
            if info.model is not None:
                doc["model"] = info.model
                if info.version is not None:
                    doc["version"] = info.version
        access = getattr(record, "access", None)
        if access is not None:
            doc.update(access)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class TextFormatter(logging.Formatter):
    """The text format, with ``[request id]`` after the logger name inside a request."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(request)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        info = current.get()
        record.request = f" [{info.request_id}]" if info is not None else ""
        return super().format(record)

"""``from mlserver.logging import logger``: the logger MLServer runtimes write to."""

import logging as _logging

logger = _logging.getLogger("mlserver")

__all__ = ["logger"]

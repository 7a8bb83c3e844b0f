"""``kserve.logging`` under modelport: ``from modelport.logging import logger``."""

import logging as _logging

from .cli import configure_logging as _configure_logging
from .model import logger

KSERVE_LOGGER_NAME = "modelport"
KSERVE_TRACE_LOGGER_NAME = "modelport.trace"
trace_logger = _logging.getLogger(KSERVE_TRACE_LOGGER_NAME)


def configure_logging(log_config: str | dict | None = None) -> None:
    """As the CLI sets logging up; a dict or a JSON/YAML file is a logging dictConfig (as in KServe)."""
    if isinstance(log_config, dict):
        import logging.config

        logging.config.dictConfig(log_config)
    else:
        _configure_logging("info", "text", log_config)


__all__ = ["KSERVE_LOGGER_NAME", "KSERVE_TRACE_LOGGER_NAME", "configure_logging", "logger", "trace_logger"]

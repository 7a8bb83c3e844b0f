"""MLServer's ``mlserver.handlers``: ``custom_handler`` for a runtime's own REST endpoints."""

from .custom import custom_handler, get_custom_handlers

__all__ = ["custom_handler", "get_custom_handlers"]

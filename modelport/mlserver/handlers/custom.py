"""MLServer's ``mlserver.handlers.custom`` (see :mod:`modelport.compat.mlserver.handlers`)."""

from ...compat.mlserver.handlers import CustomHandler, custom_handler, get_custom_handlers, register_custom_handler

__all__ = ["CustomHandler", "custom_handler", "get_custom_handlers", "register_custom_handler"]

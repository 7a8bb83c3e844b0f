from .app import RestApp

__all__ = ["RestApp"]

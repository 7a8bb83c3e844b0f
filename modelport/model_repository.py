"""``kserve.model_repository`` under modelport (see :mod:`modelport.compat.kserve.model_repository`)."""

from .compat.kserve.model_repository import MODEL_MOUNT_DIRS, ModelRepository

__all__ = ["MODEL_MOUNT_DIRS", "ModelRepository"]

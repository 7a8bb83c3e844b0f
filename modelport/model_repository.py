"""``kserve.model_repository`` under modelport (see :mod:`modelport.compat.kserve_repository`)."""

from .compat.kserve_repository import MODEL_MOUNT_DIRS, ModelRepository

__all__ = ["MODEL_MOUNT_DIRS", "ModelRepository"]

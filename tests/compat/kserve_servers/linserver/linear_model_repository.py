import os

from kserve.model_repository import MODEL_MOUNT_DIRS, ModelRepository

from .model import LinearModel


class LinearModelRepository(ModelRepository):
    def __init__(self, model_dir: str = MODEL_MOUNT_DIRS):
        super().__init__(model_dir)
        self.load_models()

    async def load(self, name: str) -> bool:
        return self.load_model(name)

    def load_model(self, name: str) -> bool:
        model = LinearModel(name, os.path.join(self.models_dir, name))
        if model.load():
            self.update(model)
        return model.ready

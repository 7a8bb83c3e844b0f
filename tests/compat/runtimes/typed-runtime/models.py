# A runtime using MLServer's @decode_args and request codecs; only the imports differ from MLServer's.
from typing import List

import numpy as np

from modelport.mlserver import MLModel
from modelport.mlserver.codecs import decode_args


class TypedRuntime(MLModel):
    async def load(self) -> bool:
        self._offset = self.settings.parameters.extra.get("offset", 0)
        return True

    @decode_args
    async def predict(self, numbers: np.ndarray, words: List[str]) -> np.ndarray:
        return numbers.sum(axis=-1) + len(words) + self._offset

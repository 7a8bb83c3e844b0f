"""MLServer compatibility: run an MLServer custom runtime after changing ``mlserver`` to ``modelport.mlserver``.

    from modelport.mlserver import MLModel, types
    from modelport.mlserver.codecs import NumpyCodec, StringCodec, decode_args
    from modelport.mlserver.utils import get_model_uri
    from modelport.mlserver.errors import InferenceError

A thin facade: the runtime is served by modelport's own data plane through one adapter
(:mod:`modelport.compat.mlserver.adapter`). Needs pydantic (``pip install 'modelport[mlserver]'``).
"""

from . import codecs, errors, settings, types, utils
from ..compat.mlserver.metrics import log, register
from ..compat.mlserver.model import MLModel
from ..compat.mlserver.settings import ModelParameters, ModelSettings, Settings

__all__ = ["log", "register", "MLModel", "ModelParameters", "ModelSettings", "Settings", "codecs", "errors", "settings", "types", "utils"]

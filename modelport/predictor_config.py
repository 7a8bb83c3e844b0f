"""``kserve.predictor_config`` under modelport (see :class:`modelport.model.PredictorConfig`)."""

from .model import PredictorConfig

__all__ = ["PredictorConfig"]

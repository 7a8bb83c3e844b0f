"""``kserve.protocol.rest.v2_datamodels`` under modelport (see :mod:`modelport.compat.kserve.v2_datamodels`)."""

from ...compat.kserve.v2_datamodels import *  # noqa: F401,F403
from ...compat.kserve.v2_datamodels import __all__  # noqa: F401

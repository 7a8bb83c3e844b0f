"""``kserve.utils`` under modelport (see :mod:`modelport.utils.utils`)."""

from . import utils  # noqa: F401  (``kserve.utils.utils`` after ``import kserve``)

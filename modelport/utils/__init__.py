"""``kserve.utils`` under modelport (see :mod:`modelport.utils.utils`)."""

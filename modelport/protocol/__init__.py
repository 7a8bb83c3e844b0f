"""``kserve.protocol`` under modelport (see :mod:`modelport.protocol.infer_type`)."""

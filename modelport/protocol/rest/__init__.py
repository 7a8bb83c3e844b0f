"""``kserve.protocol.rest`` under modelport (see :mod:`modelport.protocol.rest.v2_datamodels`)."""

"""``kserve.protocol.rest`` under modelport (see :mod:`modelport.protocol.rest.v2_datamodels`)."""


def __getattr__(name: str):
    if name == "v2_datamodels":  # pydantic: loaded on first use
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

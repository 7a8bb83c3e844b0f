"""``kserve.protocol`` under modelport (see :mod:`modelport.protocol.infer_type`)."""

from . import infer_type  # noqa: F401  (``kserve.protocol.infer_type`` after ``import kserve``)


def __getattr__(name: str):
    if name in ("grpc", "rest"):  # protobuf / pydantic: loaded on first use
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

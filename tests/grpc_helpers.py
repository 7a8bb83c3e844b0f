"""What the gRPC and interop tests share: request builders and model folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from modelport.types import InferInput, InferRequest, RequestedOutput
from modelport.wire.grpc import convert
from modelport.wire.grpc import grpc_predict_v2_pb2 as pb


def infer_request(
    model: str, *arrays: tuple[str, str, np.ndarray], raw: bool = True, outputs=None, **fields
) -> pb.ModelInferRequest:
    """A ModelInferRequest from (name, datatype, array) triples, built with our client-side converter."""
    request = InferRequest(
        model_name=model,
        infer_inputs=[InferInput(name, list(array.shape), datatype, array) for name, datatype, array in arrays],
        request_id=fields.pop("id", None),
        model_version=fields.pop("version", None),
        parameters=fields.pop("parameters", None),
        request_outputs=[RequestedOutput(name) for name in outputs] if outputs else None,
    )
    assert not fields, f"unknown fields {fields}"
    return convert.request_to_proto(request, raw=raw)


def write_model(
    folder: Path, name: str, version: str | None = None, implementation: str = "tests.fixture_models.SumModel"
) -> Path:
    """A model-settings.json for ``name`` (and ``version``) under ``folder``."""
    target = folder / name / (version or "")
    target.mkdir(parents=True, exist_ok=True)
    settings: dict = {"name": name, "implementation": implementation}
    if version:
        settings["parameters"] = {"version": version}
    (target / "model-settings.json").write_text(json.dumps(settings))
    return target

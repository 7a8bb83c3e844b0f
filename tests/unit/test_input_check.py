"""The data plane's check of a V2 request against a model's declared inputs: built once per declared
list, and rebuilt when the model replaces or extends its list."""

from __future__ import annotations

import numpy as np
import pytest

from modelport.dataplane.plane import _check_request
from modelport.errors import InvalidInput
from modelport.model import Model
from modelport.types import InferInput, InferRequest


def _request(*inputs: tuple[str, str, list[int]]) -> InferRequest:
    tensors = [InferInput(name, shape, dt, np.zeros(shape, dtype=np.float32 if dt == "FP32" else np.int64))
               for name, dt, shape in inputs]
    return InferRequest("m", tensors)


def _model(declared: list[dict]) -> Model:
    model = Model("m")
    model.inputs = declared
    return model


def test_names_datatypes_shapes_and_missing_inputs():
    model = _model([{"name": "a", "datatype": "FP32", "shape": [-1, 3]},
                    {"name": "b", "datatype": "INT64", "shape": [1]},
                    {"name": "c", "datatype": "FP32", "shape": [1], "optional": True}])
    _check_request(_request(("a", "FP32", [2, 3]), ("b", "INT64", [1])), model)
    with pytest.raises(InvalidInput, match="Unknown input 'z'; model m expects a, b, c"):
        _check_request(_request(("z", "FP32", [1])), model)
    with pytest.raises(InvalidInput, match="Input 'a' has datatype INT64, model expects FP32"):
        _check_request(_request(("a", "INT64", [2, 3]), ("b", "INT64", [1])), model)
    with pytest.raises(InvalidInput, match=r"Input 'a' has shape \[2, 4\], model expects \[-1, 3\]"):
        _check_request(_request(("a", "FP32", [2, 4]), ("b", "INT64", [1])), model)
    with pytest.raises(InvalidInput, match="Missing input\\(s\\) 'b' for model m"):
        _check_request(_request(("a", "FP32", [2, 3]), ("c", "FP32", [1])), model)
    with pytest.raises(InvalidInput, match="Missing input\\(s\\) 'b' for model m"):
        _check_request(_request(("a", "FP32", [2, 3]), ("a", "FP32", [2, 3])), model)


def test_a_model_that_replaces_or_extends_its_declared_inputs_is_checked_against_the_new_ones():
    model = _model([{"name": "a", "datatype": "FP32", "shape": [-1, 3]}])
    _check_request(_request(("a", "FP32", [1, 3])), model)
    model.inputs = [{"name": "b", "datatype": "FP32", "shape": [-1, 3]}]  # a new list
    with pytest.raises(InvalidInput, match="Unknown input 'a'"):
        _check_request(_request(("a", "FP32", [1, 3])), model)
    model.inputs.append({"name": "c", "datatype": "FP32", "shape": [1]})  # the same list, one more input
    with pytest.raises(InvalidInput, match="Missing input\\(s\\) 'c'"):
        _check_request(_request(("b", "FP32", [1, 3])), model)


def test_a_lone_input_under_another_name_is_the_runtimes_one_input():
    model = _model([{"name": "x", "datatype": "FP32", "shape": [-1, 3]}])
    model.single_input_any_name = True
    request = _request(("input-0", "FP32", [1, 3]))
    _check_request(request, model)
    assert request.inputs[0].name == "x"

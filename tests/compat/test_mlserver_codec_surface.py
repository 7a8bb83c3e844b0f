"""The codec and utility names MLServer's own runtimes import (issue 21): ``to_datatype`` as a
``Datatype``, ``codecs.lists``/``codecs.json``, the registry class, ``pd_json`` columns, the deprecated
``encode``/``decode``, and ``utils`` header helpers and URI resolution, as MLServer 1.7.1 behaves."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from modelport.mlserver import types
from modelport.mlserver.codecs import NumpyCodec, NumpyRequestCodec, PandasCodec, StringCodec
from modelport.mlserver.codecs.base import _CodecRegistry
from modelport.mlserver.codecs.json import JSONEncoderWithArray, decode_json_input_or_output, encode_to_json, encode_to_json_bytes
from modelport.mlserver.codecs.lists import as_list, is_list_of
from modelport.mlserver.codecs.numpy import to_datatype
from modelport.mlserver.settings import ModelParameters, ModelSettings
from modelport.mlserver.utils import extract_headers, get_model_uri, insert_headers, to_absolute_path


@pytest.mark.parametrize("dtype, datatype", [
    ("bool", types.Datatype.BOOL), ("uint8", types.Datatype.UINT8), ("int64", types.Datatype.INT64),
    ("float16", types.Datatype.FP16), ("float32", types.Datatype.FP32), ("float64", types.Datatype.FP64),
    ("S5", types.Datatype.BYTES), ("U3", types.Datatype.BYTES), ("O", types.Datatype.BYTES),
])
def test_to_datatype_is_a_datatype(dtype, datatype):
    assert to_datatype(np.dtype(dtype)) is datatype
    assert types.Datatype(NumpyCodec.encode_output("x", np.zeros(2, dtype=dtype if dtype != "O" else "U1")).datatype) is datatype


def test_lists():
    assert is_list_of([b"a", b"b"], bytes) and not is_list_of([b"a", "b"], bytes) and not is_list_of("ab", str)
    assert is_list_of([], str)
    assert list(as_list("one")) == ["one"] and list(as_list([b"a", b"b"])) == [b"a", b"b"]


def test_json_helpers():
    doc = {"a": np.arange(3), "b": np.float32(1.5), "c": np.int64(2)}
    assert json.loads(json.dumps(doc, cls=JSONEncoderWithArray)) == {"a": [0, 1, 2], "b": 1.5, "c": 2}
    assert encode_to_json(doc) == b'{"a":[0,1,2],"b":1.5,"c":2}' and encode_to_json([1], use_bytes=False) == "[1]"
    assert encode_to_json_bytes({"x": b"text"}) == b'{"x":"text"}'
    with pytest.raises(ValueError):
        encode_to_json(float("nan"))
    tensor = types.RequestInput(name="j", datatype="BYTES", shape=[2], data=['{"a": 1}', "[2]"])
    assert decode_json_input_or_output(tensor) == [{"a": 1}, [2]]


def test_a_registry_of_ones_own():
    registry = _CodecRegistry()
    registry.register_input_codec("np", NumpyCodec)
    registry.register_request_codec("np", NumpyRequestCodec)
    assert registry.find_input_codec("np") is NumpyCodec and registry.find_input_codec("str") is None
    assert registry.find_input_codec(payload=np.zeros(1)) is NumpyCodec
    assert registry.find_input_codec(payload=["text"]) is None  # StringCodec is not in this registry
    assert registry.find_input_codec(type_hint=np.ndarray) is NumpyCodec
    assert registry.find_request_codec_by_payload(np.zeros(1)) is NumpyRequestCodec
    assert _CodecRegistry().find_input_codec("np") is None  # registries do not share their tables


def test_mixed_columns_travel_as_json_documents():
    frame = pd.DataFrame({"mixed": ["a", 1, {"k": [1, 2]}], "text": ["x", "y", "z"]})
    response = PandasCodec.encode_response("m", frame)
    mixed, text = response.outputs
    assert mixed.parameters.content_type == "pd_json" and types.Datatype(mixed.datatype) is types.Datatype.BYTES
    assert mixed.data.root == [b'"a"', b"1", b'{"k":[1,2]}']
    assert text.parameters.content_type == "str"
    back = PandasCodec.decode_response(response)
    assert back["mixed"].tolist() == ["a", 1, {"k": [1, 2]}]


def test_deprecated_encode_decode_warn_and_work(caplog):
    with caplog.at_level(logging.WARNING):
        output = NumpyCodec.encode("x", np.array([1.0]))
        assert NumpyCodec.decode(types.RequestInput(**output.model_dump())).tolist() == [[1.0]]
        assert StringCodec.decode(types.RequestInput(name="s", datatype="BYTES", shape=[1], data=[b"t"])) == ["t"]
    assert sum("DEPRECATED!" in r.getMessage() for r in caplog.records) == 3


def test_headers_in_and_out():
    request = insert_headers(types.InferenceRequest(inputs=[]), {"x-a": "1"})
    assert request.parameters.headers == {"x-a": "1"}
    response = types.InferenceResponse(model_name="m", outputs=[], parameters=types.Parameters(headers={"x-b": "2"}))
    assert extract_headers(response) == {"x-b": "2"} and response.parameters.headers is None
    assert extract_headers(types.InferenceResponse(model_name="m", outputs=[])) is None


@pytest.mark.parametrize("uri, source, expected", [
    ("model.bin", None, "model.bin"),  # no settings file: as given, relative to the working folder
    ("model.bin", "./folder/model-settings.json", "folder/model.bin"),
    ("model.bin", "./folder/../model-settings.json", "model.bin"),
    ("/abs/model.bin", "./folder/model-settings.json", "/abs/model.bin"),
])
def test_to_absolute_path_as_mlserver(uri, source, expected):
    settings = ModelSettings(name="m", implementation="modelport.mlserver.MLModel", parameters=ModelParameters(uri=uri))
    settings._source = source
    assert to_absolute_path(settings, uri) == expected


async def test_get_model_uri_finds_a_relative_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w.json").write_text("{}")
    settings = ModelSettings(name="m", implementation="modelport.mlserver.MLModel", parameters=ModelParameters(uri="w.json"))
    assert await get_model_uri(settings) == "w.json"


def test_decode_args_takes_a_plain_tuple_return_annotation():
    from modelport.mlserver.codecs import SignatureCodec

    def predict(foo: pd.DataFrame) -> (np.ndarray, pd.DataFrame):
        return np.array([2]), pd.DataFrame({"bar": [2]})

    codec = SignatureCodec(predict)
    assert codec._output_codecs == [NumpyCodec, PandasCodec]
    response = codec.encode_response("m", predict(None))
    assert [o.name for o in response.outputs] == ["output-0", "bar"]

"""MLServer's codecs through modelport.mlserver: round trips, and the encodings MLServer produces."""

from __future__ import annotations

from typing import List

import numpy as np
import pandas as pd
import pytest

from modelport.mlserver import types
from modelport.mlserver.codecs import (
    Base64Codec,
    CodecError,
    NumpyCodec,
    NumpyRequestCodec,
    PandasCodec,
    StringCodec,
    StringRequestCodec,
    decode_args,
    find_input_codec,
    find_request_codec,
)


@pytest.mark.parametrize("array", [
    np.array([[1.5, 2.5], [3.0, 4.0]], dtype=np.float32),
    np.array([1, 2, 3], dtype=np.int64),
    np.array([True, False]),
    np.array([[1, 2]], dtype=np.uint8),
])
def test_numpy_round_trip(array):
    encoded = NumpyCodec.encode_output("x", array)
    assert encoded.parameters.content_type == "np"
    assert encoded.shape == (list(array.shape) if array.ndim > 1 else [array.shape[0], 1])  # batch dim added
    decoded = NumpyCodec.decode_output(encoded)
    assert decoded.dtype == array.dtype and decoded.ravel().tolist() == array.ravel().tolist()
    request_input = NumpyCodec.encode_input("x", array)
    assert NumpyCodec.decode_input(request_input).ravel().tolist() == array.ravel().tolist()


def test_numpy_datatypes_and_nan():
    out = NumpyCodec.encode_output("x", np.array([1.0, np.nan], dtype=np.float64))
    assert out.datatype == "FP64" and out.data.root == [1.0, None]
    assert NumpyCodec.encode_output("s", np.array(["a", "b"])).data.root == [b"a", b"b"]


def test_string_round_trip():
    out = StringCodec.encode_output("s", ["héllo", "world"])
    assert (out.datatype, out.shape, out.data.root) == ("BYTES", [2, 1], ["héllo".encode(), b"world"])
    assert StringCodec.decode_output(out) == ["héllo", "world"]
    # as JSON delivers BYTES: str elements decode as themselves
    request_input = types.RequestInput(name="s", datatype="BYTES", shape=[2], data=["a", "b"])
    assert StringCodec.decode_input(request_input) == ["a", "b"]
    assert StringCodec.encode_output("s", ["x"], use_bytes=False).data.root == ["x"]


def test_base64_round_trip():
    out = Base64Codec.encode_output("b", [b"\x00\x01binary"])
    assert out.data.root == [b"AAFiaW5hcnk="]
    assert Base64Codec.decode_output(out) == [b"\x00\x01binary"]
    assert Base64Codec.encode_output("b", [b"x"], use_bytes=False).data.root == ["eA=="]
    # not base64: taken as the bytes themselves, as MLServer does
    assert Base64Codec.decode_input(types.RequestInput(name="b", datatype="BYTES", shape=[1], data=["%%%"])) == [b"%%%"]


def test_request_codecs_round_trip():
    request = NumpyRequestCodec.encode_request(np.array([[1, 2], [3, 4]]))
    assert request.parameters.content_type == "np" and request.inputs[0].name == "input-1"
    assert NumpyRequestCodec.decode_request(request).tolist() == [[1, 2], [3, 4]]
    response = StringRequestCodec.encode_response("m", ["a", "b"], "v1")
    assert (response.model_name, response.model_version, response.outputs[0].name) == ("m", "v1", "output-1")
    assert StringRequestCodec.decode_response(response) == ["a", "b"]
    with pytest.raises(CodecError, match="single input"):
        NumpyRequestCodec.decode_request(types.InferenceRequest(inputs=[]))


def test_pandas_round_trip():
    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5], "c": ["x", "y"]})
    request = PandasCodec.encode_request(frame)
    assert request.parameters.content_type == "pd"
    assert [(i.name, i.datatype, i.shape) for i in request.inputs] == [("a", "INT64", [2, 1]), ("b", "FP64", [2, 1]), ("c", "BYTES", [2, 1])]
    assert request.inputs[2].parameters.content_type == "str"
    back = PandasCodec.decode_request(request)
    assert back["a"].tolist() == [1, 2] and back["b"].tolist() == [0.5, 1.5]
    assert [v.decode() if isinstance(v, bytes) else v for v in back["c"]] == ["x", "y"]
    response = PandasCodec.encode_response("m", frame)
    assert PandasCodec.decode_response(response)["a"].tolist() == [1, 2]


def test_registry_by_content_type_and_hint():
    assert find_input_codec("np") is NumpyCodec and find_input_codec("str") is StringCodec
    assert find_input_codec("base64") is Base64Codec and find_request_codec("pd") is PandasCodec
    assert find_input_codec(type_hint=List[str]) is StringCodec
    assert find_request_codec(type_hint=pd.DataFrame) is PandasCodec


def test_json_dump_matches_mlserver_shape():
    out = NumpyCodec.encode_output("y", np.array([1.0, 2.0]))
    response = types.InferenceResponse(model_name="m", outputs=[out])
    assert response.model_dump() == {
        "model_name": "m",
        "outputs": [{"name": "y", "shape": [2, 1], "datatype": "FP64", "parameters": {"content_type": "np"}, "data": [1.0, 2.0]}],
    }


def test_decode_args_maps_hints_to_codecs():
    import asyncio

    class Runtime:
        name, version = "m", "1"

        @decode_args
        async def predict(self, frame: pd.DataFrame) -> List[str]:
            return [f"{a}:{b}" for a, b in zip(frame["a"], frame["b"])]

    request = types.InferenceRequest(inputs=[
        types.RequestInput(name="a", datatype="INT64", shape=[2, 1], data=[1, 2]),
        types.RequestInput(name="b", datatype="FP64", shape=[2, 1], data=[0.5, 1.5]),
    ])
    response = asyncio.run(Runtime().predict(request))
    assert response.model_version == "1" and StringCodec.decode_output(response.outputs[0]) == ["1:0.5", "2:1.5"]

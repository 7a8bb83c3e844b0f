"""modelport.predict_io: one predict for V1 dicts and V2 InferRequests, and results back into responses."""

from __future__ import annotations

import base64
from decimal import Decimal

import orjson

import numpy as np
import pytest

from modelport.errors import InvalidInput
from modelport.predict_io import get_predict_input, get_predict_response, outputs_from_result
from modelport.types import InferInput, InferOutput, InferRequest, InferResponse

# -- get_predict_input ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_v1_lists_become_arrays(key):
    x = get_predict_input({key: [[1, 2], [3, 4]]})
    assert isinstance(x, np.ndarray) and x.tolist() == [[1, 2], [3, 4]]
    assert get_predict_input({key: [0.5, 1.5]}).dtype == np.float64
    assert get_predict_input({key: []}).shape == (0,)
    assert get_predict_input({key: ["a", "b"]}).tolist() == ["a", "b"]


def test_v1_instances_win_over_inputs_only_when_inputs_absent():
    assert get_predict_input({"inputs": [[9]], "instances": [[1]]}).tolist() == [[9]]


def test_v1_ragged_instances_are_rejected():
    with pytest.raises(InvalidInput, match="rectangular"):
        get_predict_input({"instances": [[1, 2], [3]]})


@pytest.mark.parametrize("doc", [{}, {"instances": {"a": 1}}, {"instances": 3}, {"inputs": "x"}])
def test_v1_without_a_list_is_rejected(doc):
    with pytest.raises(InvalidInput, match='"instances"'):
        get_predict_input(doc)


def test_v1_list_of_dicts_becomes_a_dataframe():
    pd = pytest.importorskip("pandas")
    rows = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    df = get_predict_input({"instances": rows})
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["a", "b"] and df["a"].tolist() == [1, 2] and df["b"].tolist() == ["x", "y"]
    df = get_predict_input({"instances": rows}, columns=["b"])
    assert list(df.columns) == ["b"]


def test_v2_request_gives_the_first_input_as_numpy():
    req = InferRequest("m", [InferInput("x", [2, 2], "FP32", [1, 2, 3, 4]), InferInput("y", [1], "INT32", [5])])
    x = get_predict_input(req)
    assert isinstance(x, np.ndarray) and x.dtype == np.float32 and x.shape == (2, 2)
    with pytest.raises(InvalidInput, match="no inputs"):
        get_predict_input(InferRequest("m", []))


def test_v2_request_with_pd_content_type_becomes_a_dataframe():
    pd = pytest.importorskip("pandas")
    req = InferRequest(
        "m",
        [InferInput("age", [3], "INT64", [30, 40, 50]), InferInput("name", [3], "BYTES", ["ann", "bob", "cé"])],
        parameters={"content_type": "pd"},
    )
    df = get_predict_input(req)
    assert isinstance(df, pd.DataFrame)
    assert df["age"].tolist() == [30, 40, 50] and df["name"].tolist() == ["ann", "bob", "cé"]
    # Without the content type, the same request gives the first input's array.
    req.parameters = {}
    assert get_predict_input(req).tolist() == [30, 40, 50]


@pytest.mark.parametrize("payload", [None, 3, "x", [[1, 2]], b"{}"])
def test_unsupported_payload_types(payload):
    with pytest.raises(InvalidInput, match="Unsupported payload type"):
        get_predict_input(payload)


# -- get_predict_response ---------------------------------------------------------------------------


def test_v1_response_wraps_predictions():
    assert get_predict_response({"instances": [1]}, np.array([[1, 2]]), "m") == {"predictions": [[1, 2]]}
    assert get_predict_response({"instances": [1]}, [0.5, "x"], "m") == {"predictions": [0.5, "x"]}
    assert get_predict_response({"instances": [1]}, 3, "m") == {"predictions": 3}


def test_v1_response_from_dataframe_is_records():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert get_predict_response({"instances": []}, df, "m") == {"predictions": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]}


def test_v2_response_echoes_id_and_version():
    req = InferRequest("m", [InferInput("x", [1], "FP32", [1.0])], request_id="abc", model_version="3")
    resp = get_predict_response(req, np.array([[0.25, 0.75]], dtype=np.float32), "served-name")
    assert isinstance(resp, InferResponse)
    assert (resp.id, resp.model_name, resp.model_version) == ("abc", "served-name", "3")
    (out,) = resp.outputs
    assert (out.name, out.datatype, out.shape) == ("output-0", "FP32", [1, 2])
    assert out.as_numpy().tolist() == [[0.25, 0.75]]


def test_v2_response_without_request_id_has_none():
    # The protocol echoes an id only when the request has one; no id is invented per response.
    req = InferRequest("m", [InferInput("x", [1], "FP32", [1.0])])
    assert get_predict_response(req, np.zeros(1), "m").id is None


# -- outputs_from_result ----------------------------------------------------------------------------


def _summary(outputs: list[InferOutput]) -> list[tuple]:
    return [(o.name, o.datatype, o.shape) for o in outputs]


@pytest.mark.parametrize(
    "dtype, datatype",
    [
        (np.float32, "FP32"),
        (np.float64, "FP64"),
        (np.float16, "FP16"),
        (np.int8, "INT8"),
        (np.uint64, "UINT64"),
        (np.bool_, "BOOL"),
    ],
)
def test_single_array(dtype, datatype):
    arr = np.ones((2, 3), dtype=dtype)
    (out,) = outputs_from_result(arr)
    assert (out.name, out.datatype, out.shape) == ("output-0", datatype, [2, 3])
    assert out.as_numpy() is arr
    assert "binary_data" not in out.parameters  # the request decides


def test_list_of_arrays():
    outputs = outputs_from_result([np.zeros(2, dtype=np.int32), np.array(["a"]), np.ones((1, 1))])
    assert _summary(outputs) == [("output-0", "INT32", [2]), ("output-1", "BYTES", [1]), ("output-2", "FP64", [1, 1])]


def test_plain_lists_and_scalars_are_one_output():
    assert _summary(outputs_from_result([1, 2, 3])) == [("output-0", "INT64", [3])]
    assert _summary(outputs_from_result([[0.5], [1.5]])) == [("output-0", "FP64", [2, 1])]
    assert _summary(outputs_from_result(7)) == [("output-0", "INT64", [])]
    assert _summary(outputs_from_result([])) == [("output-0", "FP64", [0])]


def test_dict_of_named_outputs():
    outputs = outputs_from_result({"label": np.array(["cat", "dög"]), "score": [0.9, 0.1], 3: np.int32(1)})
    assert _summary(outputs) == [("label", "BYTES", [2]), ("score", "FP64", [2]), ("3", "INT32", [])]
    assert outputs[0].as_numpy().tolist() == [b"cat", "dög".encode()]
    assert outputs[0].as_string() == ["cat", "dög"]


@pytest.mark.parametrize(
    "array",
    [np.array(["x", "yz"]), np.array([b"x", b"yz"]), np.array(["x", b"yz"], dtype=object)],
    ids=["str", "bytes", "object"],
)
def test_string_arrays_become_bytes_outputs(array):
    (out,) = outputs_from_result(array)
    assert out.datatype == "BYTES" and out.shape == [2]
    values = out.as_numpy()
    assert values.dtype == object and values.tolist() == [b"x", b"yz"]
    assert all(type(v) is bytes for v in values)
    assert out.data == ["x", "yz"]


def test_dataframe_gives_one_output_per_column():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5], "c": ["x", "y"], 4: [True, False]})
    outputs = outputs_from_result(df)
    assert _summary(outputs) == [("a", "INT64", [2]), ("b", "FP64", [2]), ("c", "BYTES", [2]), ("4", "BOOL", [2])]
    assert outputs[2].as_string() == ["x", "y"]


def test_result_without_a_datatype_is_rejected():
    with pytest.raises(InvalidInput, match="complex128"):
        outputs_from_result(np.array([1 + 2j]))


# -- rich Python results (wire/jsonable.py) -------------------------------------------------------
def _v1_body(result):
    from modelport.wire import v1_json

    return orjson.loads(v1_json.encode_response(get_predict_response({"instances": [1]}, result, "m")))


def test_v1_results_of_python_types_orjson_does_not_know():
    pd = pytest.importorskip("pandas")
    assert _v1_body(Decimal("3")) == {"predictions": 3} and type(_v1_body(Decimal("3"))["predictions"]) is int
    assert _v1_body(Decimal("2.50")) == {"predictions": 2.5}
    assert _v1_body([Decimal("0.1"), Decimal("1E+2")]) == {"predictions": [0.1, 100]}
    assert _v1_body(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})) == {"predictions": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]}
    assert _v1_body({"p": pd.DataFrame({"a": [0.5]})}) == {"predictions": {"p": [{"a": 0.5}]}}  # nested too
    assert _v1_body(pd.Series([3, 1])) == {"predictions": [3, 1]}
    assert _v1_body({"b", "a", "c"}) == {"predictions": ["a", "b", "c"]}  # sorted
    assert sorted(_v1_body({1, "a"})["predictions"], key=str) == [1, "a"]  # unsortable: as a list
    assert _v1_body(b"caf\xc3\xa9") == {"predictions": "café"}  # UTF-8 text
    assert _v1_body(b"\xff\x00\x01") == {"predictions": base64.b64encode(b"\xff\x00\x01").decode()}  # else base64
    assert _v1_body(np.datetime64("2024-05-06T07:08:09")) == {"predictions": "2024-05-06T07:08:09"}
    assert _v1_body(np.array(["2024-01-01", "NaT"], dtype="datetime64[D]")) == {"predictions": ["2024-01-01", None]}
    assert _v1_body(pd.Timestamp("2024-01-02 03:04:05")) == {"predictions": "2024-01-02T03:04:05"}
    assert _v1_body([pd.NaT, pd.NA, np.timedelta64(90, "s")]) == {"predictions": [None, None, 90.0]}
    assert _v1_body([np.int8(3), np.float32(0.5), np.bool_(True)]) == {"predictions": [3, 0.5, True]}


def test_v1_result_of_an_unknown_type_is_a_500_naming_the_type():
    from modelport.errors import InferenceError
    from modelport.wire import v1_json

    class Opaque:
        pass

    with pytest.raises(InferenceError, match=r"type tests\.unit\.test_payloads\.Opaque|Opaque") as caught:
        v1_json.encode_response({"predictions": [Opaque()]})
    assert "Opaque" in str(caught.value) and "cannot be sent as JSON" in str(caught.value)


def test_v2_results_of_python_types_become_typed_tensors():
    pd = pytest.importorskip("pandas")
    request = InferRequest("m", [InferInput("x", [1], "FP32", [1.0])])

    def only(result):
        (out,) = get_predict_response(request, result, "m").outputs
        return out.datatype, out.shape, out.as_numpy().tolist()

    assert only([Decimal("1.5"), Decimal("2")]) == ("FP64", [2], [1.5, 2.0])
    assert only(pd.Series([1.5, 2.5])) == ("FP64", [2], [1.5, 2.5])
    assert only({3, 1, 2}) == ("INT64", [3], [1, 2, 3])
    assert only(b"\x00raw") == ("BYTES", [1], [b"\x00raw"])
    kind, shape, values = only(np.array(["2024-01-01", "NaT"], dtype="datetime64[s]"))
    assert (kind, shape, values) == ("BYTES", [2], [b"2024-01-01T00:00:00", b""])


async def test_rich_results_over_a_real_server(serve):
    """A V1 model returning Decimal, pandas, sets, bytes and numpy datetimes, as a user's model would."""
    pd = pytest.importorskip("pandas")
    from modelport import Model

    results = {
        "decimal": Decimal("19.99"),
        "frame": pd.DataFrame({"label": ["cat"], "score": [0.9]}),
        "series": pd.Series([1, 2]),
        "set": {"b", "a"},
        "bytes": b"\x89PNG",
        "when": np.datetime64("2024-05-06"),
        "scalar": np.float32(0.25),
    }

    class Rich(Model):
        def load(self):
            self.ready = True
            return True

        def predict(self, payload, headers=None):
            kind = payload["instances"][0]
            if kind == "opaque":
                return {"predictions": object()}
            return get_predict_response(payload, results[kind], self.name)

    server, client = await serve([Rich("rich")])
    answers = {}
    for kind in results:
        r = await client.post("/v1/models/rich:predict", json={"instances": [kind]})
        assert r.status_code == 200, r.text
        answers[kind] = r.json()["predictions"]
    assert answers == {
        "decimal": 19.99, "frame": [{"label": "cat", "score": 0.9}], "series": [1, 2], "set": ["a", "b"],
        "bytes": base64.b64encode(b"\x89PNG").decode(), "when": "2024-05-06T00:00:00", "scalar": 0.25,
    }
    r = await client.post("/v1/models/rich:predict", json={"instances": ["opaque"]})
    assert r.status_code == 500 and "type object" in r.json()["error"], r.text
    assert "Traceback" not in r.text
    r = await client.post("/v1/models/rich:predict", json={"instances": ["set"]})
    assert r.status_code == 200  # and the server keeps serving

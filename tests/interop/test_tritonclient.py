"""NVIDIA's tritonclient, unchanged, against a real modelport server: HTTP (JSON and binary) and gRPC.

The triton clients block, so the server runs on its own loop in a thread (tests.helpers).
"""

from __future__ import annotations

import textwrap
import uuid

import numpy as np
import pytest

from ..fixture_models import DeclaredModel, EchoModel, FailingModel, SumModel
from ..grpc_helpers import write_model
from ..helpers import server_in_thread

httpclient = pytest.importorskip("tritonclient.http")
grpcclient = pytest.importorskip("tritonclient.grpc")
from tritonclient.utils import InferenceServerException

PROTOCOLS = ["http", "grpc"]
# How tensors travel: REST binary extension, REST JSON, gRPC raw contents (tritonclient's only mode).
MODES = [("http", True), ("http", False), ("grpc", True)]
MODE_IDS = ["http-binary", "http-json", "grpc"]


@pytest.fixture
def server():
    with server_in_thread([SumModel("sum"), EchoModel(), FailingModel(), DeclaredModel()], enable_grpc=True) as server:
        yield server


def connect(protocol: str, server):
    if protocol == "http":
        return httpclient.InferenceServerClient(f"127.0.0.1:{server.http_port}"), httpclient
    return grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}"), grpcclient


@pytest.fixture(params=PROTOCOLS)
def triton(request, server):
    client, module = connect(request.param, server)
    yield client, module, request.param
    client.close()


def tensor(module, name: str, array: np.ndarray, datatype: str, binary: bool = True):
    t = module.InferInput(name, list(array.shape), datatype)
    if module is httpclient:
        t.set_data_from_numpy(array, binary_data=binary)
    else:
        t.set_data_from_numpy(array)  # tritonclient's gRPC always sends raw contents
    return t


def requested(module, name: str, binary: bool = True):
    return (
        module.InferRequestedOutput(name, binary_data=binary)
        if module is httpclient
        else module.InferRequestedOutput(name)
    )


def _shape(field) -> tuple:
    repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED
    message = field.message_type.full_name if field.message_type else None
    return field.number, field.type, repeated, message, field.containing_oneof.name if field.containing_oneof else None


def _messages(descriptor):
    for message in (
        descriptor.message_types_by_name.values()
        if hasattr(descriptor, "message_types_by_name")
        else descriptor.nested_types
    ):
        yield message
        yield from _messages(message)


def test_wire_compatible_with_tritons_proto():
    """Every message and RPC we declare has Triton's names, field numbers, types and streaming."""
    from tritonclient.grpc import service_pb2 as triton

    from modelport.wire.grpc import grpc_predict_v2_pb2 as ours

    pool = triton.DESCRIPTOR.pool
    checked = 0
    for message in _messages(ours.DESCRIPTOR):
        theirs = pool.FindMessageTypeByName(message.full_name)
        for field in message.fields:
            assert _shape(field) == _shape(theirs.fields_by_name[field.name]), f"{message.full_name}.{field.name}"
            checked += 1
    assert checked > 50
    service = ours.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    their_service = pool.FindServiceByName("inference.GRPCInferenceService")
    for method in service.methods:
        theirs = their_service.methods_by_name[method.name]
        assert (method.input_type.full_name, method.output_type.full_name) == (
            theirs.input_type.full_name,
            theirs.output_type.full_name,
        )
        assert (method.client_streaming, method.server_streaming) == (theirs.client_streaming, theirs.server_streaming)


def assert_unknown_model_not_ready(client, protocol: str, name: str) -> None:
    """An unknown model is 404 over REST (tritonclient.http: False) and NOT_FOUND over gRPC (it raises),
    as KServe and MLServer answer; Triton itself answers ready=false."""
    if protocol == "http":
        assert client.is_model_ready(name) is False
    else:
        with pytest.raises(InferenceServerException, match=f"Model {name} not found"):
            client.is_model_ready(name)


def test_health_and_metadata(triton):
    client, _, protocol = triton
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("sum")
    assert_unknown_model_not_ready(client, protocol, "nope")
    meta = client.get_server_metadata()
    model = client.get_model_metadata("declared")
    if protocol == "grpc":  # protobuf messages; the fields are the same
        meta = {"name": meta.name, "extensions": list(meta.extensions)}
        model = {
            "name": model.name,
            "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in model.inputs],
        }
    assert meta["name"] == "modelport" and "model_repository" in meta["extensions"]
    assert model["name"] == "declared"
    assert model["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}]


@pytest.fixture(params=MODES, ids=MODE_IDS)
def mode(request, server):
    protocol, binary = request.param
    client, module = connect(protocol, server)
    yield client, module, protocol, binary
    client.close()


def test_infer_fp32(mode):
    client, module, protocol, binary = mode
    x = np.array([[1.5, 2.5], [3, 4]], np.float32)
    result = client.infer(
        "sum",
        [tensor(module, "x", x, "FP32", binary)],
        request_id="req-1",
        outputs=[requested(module, "output-0", binary)],
    )
    np.testing.assert_array_equal(result.as_numpy("output-0"), np.array([4, 7], np.float32))
    response = result.get_response()
    assert (response["id"] if protocol == "http" else response.id) == "req-1"


ECHO = [
    ("INT64", np.array([[-(2**40), 7]], np.int64)),
    ("BOOL", np.array([[True, False, True]])),
    ("FP16", np.array([[0.5, -1.25]], np.float16)),
    ("BYTES", np.array([["héllo", "", "x y"]], dtype=object)),
]


@pytest.mark.parametrize("datatype,array", ECHO, ids=[dt for dt, _ in ECHO])
def test_echo_datatypes(mode, datatype, array):
    client, module, _, binary = mode
    result = client.infer(
        "echo", [tensor(module, "t", array, datatype, binary)], outputs=[requested(module, "t", binary)]
    )
    got = result.as_numpy("t")
    assert got.shape == array.shape
    if datatype == "BYTES":
        # Binary and gRPC answers are bytes; JSON answers are str.
        assert [v.decode() if isinstance(v, bytes) else v for v in got.ravel()] == list(array.ravel())
    else:
        assert got.dtype == array.dtype
        np.testing.assert_array_equal(got, array)


def test_requested_outputs(mode):
    client, module, _, binary = mode
    a, b = np.array([1, 2], np.int32), np.array([3.5], np.float64)
    inputs = [tensor(module, "a", a, "INT32", binary), tensor(module, "b", b, "FP64", binary)]
    result = client.infer("echo", inputs, outputs=[requested(module, "b", binary)])
    np.testing.assert_array_equal(result.as_numpy("b"), b)
    assert result.as_numpy("a") is None


def test_model_error_surfaces_with_our_message(triton):
    client, module, protocol = triton
    with pytest.raises(InferenceServerException) as info:
        client.infer("failing", [tensor(module, "x", np.ones(1, np.float32), "FP32")])
    assert info.value.message().startswith("Model failing failed while serving the request; see the server log")
    assert "secret" not in info.value.message()
    assert info.value.status() == ("500" if protocol == "http" else "StatusCode.INTERNAL")
    with pytest.raises(InferenceServerException, match="Model nope not found"):
        client.infer("nope", [tensor(module, "x", np.ones(1, np.float32), "FP32")])
    assert client.is_server_ready()


def test_grpc_stream(server):
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    results = []
    try:
        client.start_stream(callback=lambda result, error: results.append((result, error)))
        for i, model in enumerate(["sum", "nope", "sum"]):
            x = tensor(grpcclient, "x", np.array([[i, 1]], np.float32), "FP32")
            client.async_stream_infer(model, [x], request_id=str(i))
        client.stop_stream()  # waits for the stream to finish
    finally:
        client.close()
    assert len(results) == 3
    (first, e0), (_, e1), (third, e2) = results
    assert (
        e0 is None
        and e2 is None
        and first.as_numpy("output-0").tolist() == [1]
        and third.as_numpy("output-0").tolist() == [3]
    )
    assert e1 is not None and e1.message() == "Model nope not found"


MODEL_SOURCE = textwrap.dedent(
    """
    import numpy as np
    from modelport import Model

    class Doubler(Model):
        def load(self):
            self.ready = True
            return True

        def predict(self, payload, headers=None):
            x = payload.inputs[0].as_numpy()
            return {"y": x * 2}
    """
)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_repository_index_load_unload(tmp_path, protocol):
    # A module name of its own, so each run imports the file it wrote.
    module_name = f"doubler_{uuid.uuid4().hex[:8]}"
    folder = write_model(tmp_path, "doubler", implementation=f"{module_name}.Doubler")
    (folder / f"{module_name}.py").write_text(MODEL_SOURCE)
    write_model(tmp_path, "sum")
    with server_in_thread(model_repository=str(tmp_path), enable_grpc=True) as server:
        client, module = connect(protocol, server)
        try:
            x = tensor(module, "x", np.array([1, 2], np.int64), "INT64")
            assert client.infer("doubler", [x]).as_numpy("y").tolist() == [2, 4]

            client.unload_model("doubler")
            assert client.is_model_ready("doubler") is False  # unloaded: both clients get False, no error
            with pytest.raises(InferenceServerException, match="Model doubler is not ready: unloaded"):
                client.infer("doubler", [x])
            index = client.get_model_repository_index()
            if protocol == "grpc":
                index = [{"name": m.name, "state": m.state} for m in index.models]
            assert {m["name"]: m["state"] for m in index} == {"doubler": "UNAVAILABLE", "sum": "READY"}

            client.load_model("doubler")
            assert client.is_model_ready("doubler")
            assert client.infer("doubler", [x]).as_numpy("y").tolist() == [2, 4]
            with pytest.raises(InferenceServerException, match="Model ghost not found"):
                client.load_model("ghost")
        finally:
            client.close()

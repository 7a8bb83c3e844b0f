"""Triton's system shared-memory extension, driven by NVIDIA's tritonclient unchanged (HTTP and gRPC):
its ``tritonclient.utils.shared_memory`` utilities make the regions, its clients register them and send
tensors through them, against a real modelport server (modelport/shm.py).

The triton clients block, so the server runs on its own loop in a thread (tests.helpers); it is in this
process, so /proc/self/maps shows its mappings (the client's own mapping of an object is one more).
"""

from __future__ import annotations

import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from modelport import InferOutput, InferResponse, Model

from ..fixture_models import EchoModel
from ..helpers import server_in_thread

httpclient = pytest.importorskip("tritonclient.http")
grpcclient = pytest.importorskip("tritonclient.grpc")
shm = pytest.importorskip("tritonclient.utils.shared_memory")
from tritonclient.utils import InferenceServerException

# What each protocol answers per kind of refusal (REST: Triton's HTTP statuses; gRPC: its codes).
STATUS = {
    "http": {"invalid": "400", "not_found": "404", "exists": "400", "off": "501", "denied": "403"},
    "grpc": {"invalid": "StatusCode.INVALID_ARGUMENT", "not_found": "StatusCode.NOT_FOUND",
             "exists": "StatusCode.ALREADY_EXISTS", "off": "StatusCode.UNIMPLEMENTED",
             "denied": "StatusCode.PERMISSION_DENIED"},
}


class GateEcho(Model):
    """An echo that waits, once it has its input, until the test lets it answer."""

    def __init__(self):
        super().__init__("gate")
        self.ready = True
        self.entered, self.release = threading.Event(), threading.Event()

    def predict(self, payload, headers=None):
        self.entered.set()
        assert self.release.wait(60), "the test never released the model"
        tensor = payload.inputs[0]
        out = InferOutput(tensor.name, tensor.shape, tensor.datatype)
        out.set_data_from_numpy(tensor.as_numpy() * 2, binary_data=False)
        return InferResponse(payload.id, self.name, [out])


GATE = GateEcho()


@pytest.fixture(scope="module")
def server():
    with server_in_thread([EchoModel(), GATE], enable_grpc=True, system_shared_memory="local") as server:
        yield server


@pytest.fixture(params=["http", "grpc"])
def triton(request, server):
    module = httpclient if request.param == "http" else grpcclient
    port = server.http_port if request.param == "http" else server.grpc_port
    client = module.InferenceServerClient(f"127.0.0.1:{port}")
    yield client, module, request.param
    client.unregister_system_shared_memory()  # every region: the next test starts with none
    client.close()


@pytest.fixture
def regions():
    """make(size) -> (handle, key): a fresh shared-memory object, destroyed after the test."""
    made = []

    def make(size: int):
        key = f"/mp_test_{uuid.uuid4().hex[:12]}"
        handle = shm.create_shared_memory_region(key.strip("/"), key, size)
        made.append(handle)
        return handle, key

    yield make
    for handle in made:
        shm.destroy_shared_memory_region(handle)


def mappings(key: str) -> int:
    """How many mappings of the object this process holds (the client's own included)."""
    with open("/proc/self/maps") as maps:
        return sum(1 for line in maps if line.rstrip().endswith("/dev/shm/" + key.strip("/")))


def refused(call, *args, **kwargs) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as info:
        call(*args, **kwargs)
    return info.value


def echo_in_shm(client, module, array: np.ndarray, in_region: str, out_region: str, out_size: int | None = None,
                in_offset: int = 0, out_offset: int = 0):
    inp = module.InferInput("x", list(array.shape), "FP32")
    inp.set_shared_memory(in_region, array.nbytes, offset=in_offset)
    out = module.InferRequestedOutput("x", binary_data=True) if module is httpclient else module.InferRequestedOutput("x")
    out.set_shared_memory(out_region, array.nbytes if out_size is None else out_size, offset=out_offset)
    return client.infer("echo", [inp], outputs=[out])


def assert_serving(client, module) -> None:
    """The server still answers a plain request after a refusal."""
    inp = module.InferInput("x", [1, 2], "FP32")
    inp.set_data_from_numpy(np.array([[1.5, 2.5]], np.float32))
    result = client.infer("echo", [inp])
    np.testing.assert_array_equal(result.as_numpy("x"), [[1.5, 2.5]])


@pytest.mark.parametrize("shape", [[64, 1024], [1, 3, 224, 224]])
def test_round_trip_with_inputs_and_outputs_in_shared_memory(triton, regions, shape):
    client, module, _ = triton
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    (inp, in_key), (out, out_key) = regions(data.nbytes), regions(data.nbytes)
    shm.set_shared_memory_region(inp, [data])
    client.register_system_shared_memory("in", in_key, data.nbytes)
    client.register_system_shared_memory("out", out_key, data.nbytes)
    for round_ in range(2):  # the same regions serve request after request
        data += 1
        shm.set_shared_memory_region(inp, [data])
        result = echo_in_shm(client, module, data, "in", "out")
        np.testing.assert_array_equal(shm.get_contents_as_numpy(out, np.float32, shape), data)
        output = result.get_output("x")
        got_shape = list(output["shape"] if module is httpclient else output.shape)
        assert got_shape == shape
        params = output["parameters"] if module is httpclient else {k: v for k, v in output.parameters.items()}
        assert "shared_memory_region" in params
        if module is httpclient:
            assert "data" not in output and "binary_data_size" not in params  # no data in the answer


def test_bytes_tensors_through_shared_memory(triton, regions):
    """BYTES: length-prefixed elements, as tritonclient serializes them into the region and reads them back."""
    from tritonclient.utils import serialize_byte_tensor

    client, module, _ = triton
    words = np.array([b"shared", b"memory", b"\x00bytes"], dtype=np.object_)
    packed = serialize_byte_tensor(words)
    size = len(packed.item()) if packed.dtype == np.object_ else packed.nbytes  # the serialized bytes
    (inp, in_key), (out, out_key) = regions(size), regions(size)
    shm.set_shared_memory_region(inp, [packed])
    client.register_system_shared_memory("bin", in_key, size)
    client.register_system_shared_memory("bout", out_key, size)
    tensor = module.InferInput("x", [3], "BYTES")
    tensor.set_shared_memory("bin", size)
    wanted = module.InferRequestedOutput("x")
    wanted.set_shared_memory("bout", size)
    client.infer("echo", [tensor], outputs=[wanted])
    assert list(shm.get_contents_as_numpy(out, np.object_, [3])) == list(words)


def test_one_input_in_shared_memory_one_inline_offsets_and_an_inline_output(triton, regions):
    """Mixed: input a from a region at an offset, b inline; output a into a region at an offset, b inline."""
    client, module, protocol = triton
    a, b = np.arange(8, dtype=np.float32).reshape(2, 4), np.full((1, 3), 7.0, np.float32)
    (region, key) = regions(4096 + 2 * a.nbytes)
    shm.set_shared_memory_region(region, [a], offset=4096)
    client.register_system_shared_memory("io", key, 4096 + 2 * a.nbytes)
    in_a = module.InferInput("a", [2, 4], "FP32")
    in_a.set_shared_memory("io", a.nbytes, offset=4096)
    in_b = module.InferInput("b", [1, 3], "FP32")
    in_b.set_data_from_numpy(b)
    out_a = module.InferRequestedOutput("a")
    out_a.set_shared_memory("io", a.nbytes, offset=4096 + a.nbytes)
    result = client.infer("echo", [in_a, in_b], outputs=[out_a, module.InferRequestedOutput("b")])
    np.testing.assert_array_equal(result.as_numpy("b"), b)
    np.testing.assert_array_equal(shm.get_contents_as_numpy(region, np.float32, [2, 4], offset=4096 + a.nbytes), a)


def test_status_lists_the_regions_and_unregister_removes_them(triton, regions):
    client, module, protocol = triton
    (_, key1), (_, key2) = regions(4096), regions(8192)
    client.register_system_shared_memory("one", key1, 4096)
    client.register_system_shared_memory("two", key2, 4096, offset=4096)

    def status(name: str = "") -> dict:
        answer = client.get_system_shared_memory_status(name)
        if module is httpclient:
            return {r["name"]: (r["key"], int(r["offset"]), int(r["byte_size"])) for r in answer}
        return {n: (r.key, r.offset, r.byte_size) for n, r in answer.regions.items()}

    assert status() == {"one": (key1, 0, 4096), "two": (key2, 4096, 4096)}
    assert status("two") == {"two": (key2, 4096, 4096)}
    client.unregister_system_shared_memory("one")
    assert status() == {"two": (key2, 4096, 4096)}
    client.unregister_system_shared_memory("never-registered")  # not an error, as in Triton
    error = refused(client.get_system_shared_memory_status, "one")
    assert error.status() == STATUS[protocol]["not_found"] and "one" in error.message()
    client.unregister_system_shared_memory()  # every region
    assert status() == {}


def test_unregister_unmaps_the_region(triton, regions):
    client, module, _ = triton
    handle, key = regions(4096)
    alone = mappings(key)  # the client's own
    client.register_system_shared_memory("m", key, 4096)
    assert mappings(key) == alone + 1
    data = np.ones((2, 2), np.float32)
    shm.set_shared_memory_region(handle, [data])
    echo_in_shm(client, module, data, "m", "m", out_offset=data.nbytes)
    client.unregister_system_shared_memory("m")
    assert mappings(key) == alone


def test_a_request_in_flight_keeps_its_regions_through_unregister(triton, regions, server):
    """Unregistered while the model runs: the request still reads and writes its regions; they are
    unmapped once it is answered."""
    client, module, _ = triton
    data = np.arange(16, dtype=np.float32).reshape(4, 4)
    (inp, in_key), (out, out_key) = regions(data.nbytes), regions(data.nbytes)
    shm.set_shared_memory_region(inp, [data])
    client.register_system_shared_memory("gin", in_key, data.nbytes)
    client.register_system_shared_memory("gout", out_key, data.nbytes)
    alone = mappings(in_key), mappings(out_key)
    GATE.entered.clear()
    GATE.release.clear()
    address = f"127.0.0.1:{server.http_port if module is httpclient else server.grpc_port}"

    def infer_in_flight() -> None:  # its own client: tritonclient's HTTP client stays on its thread (gevent)
        own = module.InferenceServerClient(address)
        try:
            in_x = module.InferInput("x", [4, 4], "FP32")
            in_x.set_shared_memory("gin", data.nbytes)
            out_x = module.InferRequestedOutput("x")
            out_x.set_shared_memory("gout", data.nbytes)
            own.infer("gate", [in_x], outputs=[out_x])
        finally:
            own.close()

    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(infer_in_flight)
        assert GATE.entered.wait(30)
        client.unregister_system_shared_memory()  # every region, while the request is in flight
        assert _names(client, module) == []
        GATE.release.set()
        answer.result(timeout=60)
    np.testing.assert_array_equal(shm.get_contents_as_numpy(out, np.float32, [4, 4]), data * 2)
    assert (mappings(in_key), mappings(out_key)) == (alone[0] - 1, alone[1] - 1)  # unmapped once answered


def test_registration_refusals(triton, regions, tmp_path):
    client, module, protocol = triton
    want = STATUS[protocol]
    _, key = regions(4096)
    client.register_system_shared_memory("dup", key, 1024)
    error = refused(client.register_system_shared_memory, "dup", key, 1024)
    assert error.status() == want["exists"] and "dup" in error.message()
    cases = [
        ("missing", f"/mp_missing_{uuid.uuid4().hex[:8]}", 0, 64, "no shared memory object"),
        ("past-end", key, 0, 8192, "past the end"),
        ("offset-past-end", key, 4000, 200, "past the end"),
        ("escape", "/../../etc/passwd", 0, 64, "directly under /dev/shm"),
        ("nested", "/a/b", 0, 64, "directly under /dev/shm"),
        ("empty-key", "", 0, 64, "needs a key"),
        ("zero", key, 0, 0, "at least 1"),
    ]
    link = f"mp_link_{uuid.uuid4().hex[:8]}"
    target = tmp_path / "plain-file"
    target.write_bytes(b"\0" * 4096)
    os.symlink(target, f"/dev/shm/{link}")
    directory = f"mp_dir_{uuid.uuid4().hex[:8]}"
    os.mkdir(f"/dev/shm/{directory}")
    try:
        cases += [("link", "/" + link, 0, 64, "cannot open"), ("dir", "/" + directory, 0, 64, "")]
        for name, bad_key, offset, size, says in cases:
            error = refused(client.register_system_shared_memory, name, bad_key, size, offset=offset)
            assert error.status() == want["invalid"], (name, error)
            assert says in error.message(), (name, error.message())
    finally:
        os.unlink(f"/dev/shm/{link}")
        os.rmdir(f"/dev/shm/{directory}")
    assert [r for r in _names(client, module)] == ["dup"]  # nothing half-registered
    assert_serving(client, module)


def test_negative_offset_over_rest(server, regions):
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    try:
        _, key = regions(4096)
        error = refused(client.register_system_shared_memory, "neg", key, 64, offset=-1)
        assert error.status() == "400" and "non-negative" in error.message()
    finally:
        client.close()


def _names(client, module) -> list[str]:
    answer = client.get_system_shared_memory_status()
    return [r["name"] for r in answer] if module is httpclient else list(answer.regions)


def test_inference_refusals(triton, regions):
    client, module, protocol = triton
    want = STATUS[protocol]
    data = np.ones((4, 4), np.float32)
    handle, key = regions(4096)
    shm.set_shared_memory_region(handle, [data])
    client.register_system_shared_memory("r", key, 1024)
    cases = [
        # (input region, input byte size, input offset, output region, output size, output offset): status, says
        (("nowhere", 64, 0), ("r", 64, 64), "not_found", "nowhere"),
        (("r", 64, 0), ("nowhere", 64, 0), "not_found", "nowhere"),
        (("r", 64, 1000), ("r", 64, 0), "invalid", "past the end"),
        (("r", 64, -8), ("r", 64, 0), "invalid", "negative"),
        (("r", 32, 0), ("r", 64, 64), "invalid", "needs 64 bytes"),
        (("r", 64, 0), ("r", 16, 64), "invalid", "do not fit"),  # output region too small
        (("r", 64, 0), ("r", 64, 2000), "invalid", "past the end"),
    ]
    for (in_region, in_size, in_offset), (out_region, out_size, out_offset), status, says in cases:
        inp = module.InferInput("x", [4, 4], "FP32")
        inp.set_shared_memory(in_region, in_size, offset=in_offset)
        out = module.InferRequestedOutput("x")
        out.set_shared_memory(out_region, out_size, offset=out_offset)
        error = refused(client.infer, "echo", [inp], outputs=[out])
        assert error.status() == want[status], (in_region, in_offset, out_region, error)
        assert says in error.message(), error.message()
    assert_serving(client, module)


def test_stream_doors_refuse_tensors_in_shared_memory(server, regions):
    import httpx

    handle, key = regions(4096)
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    client.register_system_shared_memory("s", key, 4096)
    try:
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2],
                            "parameters": {"shared_memory_region": "s", "shared_memory_byte_size": 8}}]}
        r = httpx.post(f"http://127.0.0.1:{server.http_port}/v2/models/echo/infer_stream", json=body)
        assert r.status_code == 400 and "infer only" in r.json()["error"]
    finally:
        client.unregister_system_shared_memory()
        client.close()


def test_grpc_stream_refuses_tensors_in_shared_memory(server, regions):
    import grpc

    from modelport.wire.grpc import grpc_predict_v2_pb2 as pb

    _, key = regions(4096)
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    client.register_system_shared_memory("gs", key, 4096)
    request = pb.ModelInferRequest(model_name="echo")
    tensor = request.inputs.add(name="x", datatype="FP32", shape=[1, 2])
    tensor.parameters["shared_memory_region"].string_param = "gs"
    tensor.parameters["shared_memory_byte_size"].int64_param = 8
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            call = channel.stream_stream("/inference.GRPCInferenceService/ModelStreamInfer",
                                         request_serializer=pb.ModelInferRequest.SerializeToString,
                                         response_deserializer=pb.ModelStreamInferResponse.FromString)
            replies = list(call(iter([request]), timeout=30))
        assert len(replies) == 1 and "infer only" in replies[0].error_message
    finally:
        client.unregister_system_shared_memory()
        client.close()


def test_data_and_a_region_for_one_input_is_refused(server, regions):
    import grpc
    import httpx

    from modelport.wire.grpc import grpc_predict_v2_pb2 as pb

    _, key = regions(4096)
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    client.register_system_shared_memory("both", key, 4096)
    region = {"shared_memory_region": "both", "shared_memory_byte_size": 8}
    try:
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1, 2], "parameters": region}]}
        r = httpx.post(f"http://127.0.0.1:{server.http_port}/v2/models/echo/infer", json=body)
        assert r.status_code == 400 and "one or the other" in r.json()["error"]
        request = pb.ModelInferRequest(model_name="echo")
        tensor = request.inputs.add(name="x", datatype="FP32", shape=[1, 2])
        tensor.contents.fp32_contents.extend([1.0, 2.0])
        tensor.parameters["shared_memory_region"].string_param = "both"
        tensor.parameters["shared_memory_byte_size"].int64_param = 8
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                       request_serializer=pb.ModelInferRequest.SerializeToString,
                                       response_deserializer=pb.ModelInferResponse.FromString)
            with pytest.raises(grpc.RpcError) as info:
                call(request, timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "one or the other" in info.value.details()
    finally:
        client.unregister_system_shared_memory()
        client.close()


def test_server_metadata_names_the_extension(triton):
    client, module, _ = triton
    meta = client.get_server_metadata()
    extensions = meta["extensions"] if module is httpclient else list(meta.extensions)
    assert "system_shared_memory" in extensions


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_off_by_default(protocol, regions):
    """A server that does not turn the extension on refuses it at every door, clearly."""
    handle, key = regions(4096)
    with server_in_thread([EchoModel()], enable_grpc=True) as server:
        module = httpclient if protocol == "http" else grpcclient
        client = module.InferenceServerClient(f"127.0.0.1:{server.http_port if protocol == 'http' else server.grpc_port}")
        try:
            for call, args in ((client.register_system_shared_memory, ("r", key, 64)),
                               (client.get_system_shared_memory_status, ()),
                               (client.unregister_system_shared_memory, ())):
                error = refused(call, *args)
                assert error.status() == STATUS[protocol]["off"] and "system_shared_memory" in error.message()
            inp = module.InferInput("x", [1, 2], "FP32")
            inp.set_shared_memory("r", 8)
            error = refused(client.infer, "echo", [inp])
            assert error.status() == STATUS[protocol]["off"]
            meta = client.get_server_metadata()
            assert "system_shared_memory" not in (meta["extensions"] if module is httpclient else list(meta.extensions))
            assert_serving(client, module)
        finally:
            client.close()

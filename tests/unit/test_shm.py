"""The shared-memory registry (modelport/shm.py) on real /dev/shm objects: limits, the lifetime of a
mapping (kept by a request in flight, released when the last user lets go), who may use it, and the
settings that turn it on."""

from __future__ import annotations

import gc
import os
import uuid

import httpx
import numpy as np
import pytest

from modelport import shm
from modelport.errors import InvalidInput, PermissionDenied, Unimplemented
from modelport.settings import SettingsError
from modelport.types import InferInput, InferOutput, InferRequest, InferResponse, RequestedOutput

from ..fixture_models import EchoModel
from ..helpers import make_server


@pytest.fixture
def shm_object():
    """make(size) -> key of a fresh object under /dev/shm, removed after the test."""
    made = []

    def make(size: int) -> str:
        name = f"mp_unit_{uuid.uuid4().hex[:12]}"
        with open(f"/dev/shm/{name}", "wb") as f:
            f.write(bytes(size))
        made.append(name)
        return "/" + name

    yield make
    for name in made:
        os.unlink(f"/dev/shm/{name}")


def mappings(key: str) -> int:
    with open("/proc/self/maps") as maps:
        return sum(1 for line in maps if line.rstrip().endswith("/dev/shm/" + key.strip("/")))


def request_in(region: str, data: np.ndarray, out_offset: int) -> InferRequest:
    tensor = InferInput("x", list(data.shape), "FP32", None, {shm.REGION: region, shm.BYTE_SIZE: data.nbytes})
    out = RequestedOutput("x", {shm.REGION: region, shm.BYTE_SIZE: data.nbytes, shm.OFFSET: out_offset})
    return InferRequest("echo", [tensor], request_outputs=[out])


def test_a_request_in_flight_keeps_its_region_mapped_after_unregister(shm_object):
    key = shm_object(4096)
    shared = shm.SharedMemory("local")
    shared.register("r", key, 0, 4096)
    assert mappings(key) == 1
    data = np.arange(4, dtype=np.float32)
    shared.region("r").view[:16] = data.tobytes()
    request = request_in("r", data, 16)
    binding = shm.bind(shared, request)
    array = request.inputs[0].as_numpy()
    np.testing.assert_array_equal(array, data)
    assert not array.flags.writeable  # the client's memory: the model reads it
    assert shm.REGION not in request.inputs[0].parameters  # the model sees a plain input
    shared.unregister("r")  # while the request is in flight
    assert shared.status() == [] and mappings(key) == 1
    answer = binding.write(InferResponse(None, "echo", [InferOutput("x", [4], "FP32", array * 2)]))
    assert answer.outputs[0].parameters[shm.REGION] == "r"
    with open(f"/dev/shm/{key.strip('/')}", "rb") as f:
        np.testing.assert_array_equal(np.frombuffer(f.read()[16:32], np.float32), data * 2)
    del binding, request, array, answer
    gc.collect()
    assert mappings(key) == 0  # the last user let go: unmapped


def test_limits_on_what_may_be_mapped(shm_object):
    key = shm_object(64 * 1024)
    shared = shm.SharedMemory("local", max_bytes=8192)
    shared.register("a", key, 0, 8192)
    with pytest.raises(InvalidInput, match="shared_memory_max_bytes"):
        shared.register("b", key, 8192, 1)
    shared.unregister("a")
    shared.register("b", key, 4097, 100)  # any offset: the mapping starts at the page below it
    region = shared.region("b")
    assert len(region.view) == 100 and (region.offset, region.byte_size) == (4097, 100)
    many = shm.SharedMemory("local", max_bytes=2**40)
    for i in range(shm.MAX_REGIONS):
        many.register(f"r{i}", key, 0, 1)
    with pytest.raises(InvalidInput, match="At most"):
        many.register("one-more", key, 0, 1)
    many.close()
    shared.close()
    assert mappings(key) == 1  # this test still holds region "b"
    del region
    gc.collect()
    assert mappings(key) == 0


def test_a_shrunken_object_is_an_error_not_a_crash(shm_object):
    key = shm_object(8192)
    shared = shm.SharedMemory("local")
    shared.register("r", key, 0, 8192)
    os.truncate(f"/dev/shm/{key.strip('/')}", 100)
    data = np.zeros(4, np.float32)
    with pytest.raises(InvalidInput, match="shrank"):
        shm.bind(shared, request_in("r", data, 16))
    shared.close()


def test_who_may_use_it():
    off, local, anyone = shm.SharedMemory("off"), shm.SharedMemory("local"), shm.SharedMemory("on")
    with pytest.raises(Unimplemented, match="system_shared_memory: off"):
        off.admit(True)
    local.admit(True)
    with pytest.raises(PermissionDenied, match="this host only"):
        local.admit(False)
    anyone.admit(False)
    for peer, is_local in [("ipv4:127.0.0.1:5000", True), ("ipv4:10.0.0.7:5000", False), ("ipv6:[::1]:5000", True),
                           ("ipv6:%5B::1%5D:5000", True), ("ipv6:[2001:db8::1]:5000", False), ("unix:/tmp/s", True),
                           ("", False)]:
        assert shm.is_local_peer(peer) is is_local, peer
    assert shm.is_local_address("127.0.0.1") and shm.is_local_address("::1") and not shm.is_local_address("192.168.1.2")
    assert not shm.is_local_address(None)
    with pytest.raises(ValueError):
        shm.SharedMemory("sometimes")


def test_settings():
    with pytest.raises(SettingsError, match="off, local or on"):
        make_server(system_shared_memory="yes")
    with pytest.raises(SettingsError, match="workers > 1"):
        make_server(system_shared_memory="local", workers=2)
    with pytest.raises(SettingsError, match="at least 1"):
        make_server(system_shared_memory="local", shared_memory_max_bytes=0)
    assert make_server().dataplane.shared_memory.mode == "off"  # the default


@pytest.mark.parametrize("mode, status", [("local", 403), ("on", 200)])
async def test_local_mode_refuses_a_client_on_another_host(mode, status, shm_object):
    key = shm_object(4096)
    server = make_server(system_shared_memory=mode)
    server.register_model(EchoModel())
    remote = httpx.ASGITransport(app=server.app, client=("192.0.2.10", 40000))
    async with httpx.AsyncClient(transport=remote, base_url="http://modelport") as client:
        r = await client.post("/v2/systemsharedmemory/region/r/register", json={"key": key, "byte_size": 64})
        assert r.status_code == status, r.text
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2],
                            "parameters": {shm.REGION: "r", shm.BYTE_SIZE: 8}}]}
        r = await client.post("/v2/models/echo/infer", json=body)
        assert r.status_code == (403 if mode == "local" else 200), r.text
        if mode == "local":
            assert "this host only" in r.json()["error"]
    server.dataplane.shared_memory.close()


async def test_stopping_the_server_unmaps_every_region(shm_object):
    key = shm_object(4096)
    server = make_server(system_shared_memory="local")
    await server.start_async([EchoModel()])
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as client:
            for name in ("a", "b"):
                r = await client.post(f"/v2/systemsharedmemory/region/{name}/register", json={"key": key, "byte_size": 64})
                assert r.status_code == 200, r.text
            assert mappings(key) == 2
    finally:
        await server.stop(grace_period=0)
    gc.collect()
    assert mappings(key) == 0


def test_the_codecs_send_no_data_for_a_tensor_in_shared_memory():
    """REST JSON and gRPC: a tensor whose parameters name a region travels without data (Triton's rule),
    and gRPC keeps one raw entry per output (empty for it), as tritonclient counts them."""
    from modelport.wire import v2_json
    from modelport.wire.grpc import convert

    placed = InferOutput("a", [2, 2], "FP32", np.zeros((2, 2), np.float32), {shm.REGION: "r", shm.BYTE_SIZE: 16})
    inline = InferOutput("b", [2], "FP32", np.array([1.0, 2.0], np.float32))
    response = InferResponse("id", "m", [placed, inline])
    body, _ = v2_json.encode_response(response)
    doc = v2_json.loads(body)
    assert doc["outputs"][0] == {"name": "a", "datatype": "FP32", "shape": [2, 2],
                                 "parameters": {shm.REGION: "r", shm.BYTE_SIZE: 16}}
    assert doc["outputs"][1]["data"] == [1.0, 2.0]
    back = v2_json.response_from_dict(doc)
    assert back.outputs[0].shape == [2, 2] and back.outputs[0].parameters[shm.REGION] == "r"
    message = convert.response_to_proto(response, raw=True)
    assert list(message.raw_output_contents) == [b"", np.array([1.0, 2.0], np.float32).tobytes()]
    decoded = convert.response_from_proto(message)
    np.testing.assert_array_equal(decoded.outputs[1].as_numpy(), [1.0, 2.0])
    with pytest.raises(InvalidInput, match="no data"):
        decoded.outputs[0].as_numpy()  # its data is in the region


def test_serve_with_workers_refuses_shared_memory_by_name(tmp_path):
    """A region is mapped by one process: `serve --workers 2` with the extension on stops before listening."""
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run(
        [sys.executable, "-m", "modelport.cli", "serve", str(tmp_path), "--workers", "2", "--system-shared-memory", "local",
         "--http-port", "0", "--grpc-port", "0"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": repo},
    )
    assert done.returncode != 0
    assert "system_shared_memory" in done.stderr and "workers > 1" in done.stderr, done.stderr[-2000:]

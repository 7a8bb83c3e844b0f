"""The gRPC clients against real servers (port 0): every method, every option, every failure.

Retries are counted on a scripted grpc.aio servicer; TLS runs against a grpc.aio server with
ssl_server_credentials hosting our servicer, with certificates made at test time (trustme).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import grpc
import grpc.aio
import numpy as np
import pytest

from modelport import InferInput, InferOutput, InferRequest, InferResponse, RequestedOutput
from modelport.client import (
    AsyncGRPCClient,
    ClientError,
    ConnectionFailed,
    GRPCClient,
    RequestTimeout,
    ServerError,
    TLSError,
)
from modelport.errors import ErrorCode
from modelport.transports.grpc.servicer import InferenceServicer
from modelport.wire.grpc import convert
from modelport.wire.grpc import grpc_predict_v2_pb2 as pb
from modelport.wire.grpc.grpc_predict_v2_pb2_grpc import (
    GRPCInferenceServiceServicer,
    add_GRPCInferenceServiceServicer_to_server,
)

from ..fixture_models import (
    AsyncSlowModel,
    BrokenLoadModel,
    DeclaredModel,
    EchoModel,
    HeadersModel,
    PickyModel,
    SumModel,
)
from ..helpers import make_server, server_in_thread

FAST = {"backoff": 0.01, "max_backoff": 0.02}
X = ("x", "FP32", np.array([[1, 2, 3]], np.float32))


def request(model: str, *tensors: tuple[str, str, np.ndarray], **kwargs) -> InferRequest:
    return InferRequest(model, [InferInput(n, list(a.shape), dt, a) for n, dt, a in tensors], **kwargs)


@pytest.fixture
async def target(serve):
    models = [SumModel("sum"), EchoModel(), PickyModel(), HeadersModel(), AsyncSlowModel(delay=0.5), DeclaredModel(),
              BrokenLoadModel("broken")]
    server, _ = await serve(models, enable_grpc=True)
    return f"127.0.0.1:{server.grpc_port}"


@pytest.fixture
async def connect():
    clients: list[AsyncGRPCClient] = []

    def make(url: str, **options) -> AsyncGRPCClient:
        c = AsyncGRPCClient(url, **options)
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.close()


# -- a scripted servicer, to count attempts -------------------------------------------------------
HOLD = "hold"  # a script step that records the call and answers only when the test releases it


class Scripted(GRPCInferenceServiceServicer):
    """ModelInfer answers with the next status of ``script`` (None: success), repeating the last."""

    def __init__(self, *script: grpc.StatusCode | str | None):
        self.script = list(script)
        self.calls: list[dict] = []
        self.release = asyncio.Event()

    async def ModelInfer(self, request, context):
        self.calls.append(dict(context.invocation_metadata()))
        code = self.script[min(len(self.calls), len(self.script)) - 1]
        if code == HOLD:
            await asyncio.wait_for(self.release.wait(), 60)
        elif code is not None:
            await context.abort(code, f"scripted {code.name}")
        out = InferOutput("y", [1], "INT32")
        out.set_data_from_numpy(np.array([len(self.calls)], np.int32))
        return convert.response_to_proto(InferResponse(request.id or None, request.model_name, [out]), raw=True)

    async def ServerReady(self, request, context):
        self.calls.append(dict(context.invocation_metadata()))
        await context.abort(grpc.StatusCode.UNAVAILABLE, "draining")


@pytest.fixture
async def scripted():
    servers = []

    async def start(*script) -> tuple[Scripted, str]:
        servicer = Scripted(*script)
        server = grpc.aio.server()
        add_GRPCInferenceServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        return servicer, f"127.0.0.1:{port}"

    yield start
    for server in servers:
        await server.stop(0)


# -- inference, health, metadata, repository ------------------------------------------------------
async def test_infer_round_trips_every_datatype(target, connect):
    c = connect(target)
    tensors = [
        ("f32", "FP32", np.arange(6, dtype=np.float32).reshape(2, 3)),
        ("f16", "FP16", np.array([0.5, -1.25], np.float16)),
        ("i64", "INT64", np.array([2**40, -3], np.int64)),
        ("u16", "UINT16", np.array([[0, 65535]], np.uint16)),
        ("b", "BOOL", np.array([True, False])),
        ("s", "BYTES", np.array([b"caf\xc3\xa9", b"\xff\x00raw"], dtype=object)),
    ]
    response = await c.infer(request("echo", *tensors, request_id="abc", parameters={"p": 1}))
    assert isinstance(response, InferResponse) and response.id == "abc" and response.model_name == "echo"
    for name, datatype, array in tensors:
        out = response.get_output_by_name(name)
        assert out.datatype == datatype and out.shape == list(array.shape)
        np.testing.assert_array_equal(out.as_numpy(), array)
    assert response.parameters == {"p": 1}
    req = request("echo", ("a", "INT32", np.array([1], np.int32)), ("b", "INT32", np.array([2], np.int32)))
    req.request_outputs = [RequestedOutput("b")]
    assert [o.name for o in (await c.infer(req)).outputs] == ["b"]
    with pytest.raises(TypeError, match="InferRequest"):
        await c.infer({"inputs": []})


async def test_health_metadata_and_repository(target, connect):
    c = connect(target)
    assert await c.is_server_live() is True
    assert await c.is_server_ready() is False  # the broken model
    assert await c.is_model_ready("sum") is True and await c.is_model_ready("broken") is False
    with pytest.raises(ServerError) as info:
        await c.is_model_ready("nope")
    assert info.value.grpc_code == "NOT_FOUND" and info.value.status == 404 and info.value.code is ErrorCode.NOT_FOUND
    assert (await c.get_server_metadata())["name"] == "modelport"
    assert (await c.get_model_metadata("declared"))["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}]
    index = {m["name"]: m["state"] for m in await c.repository_index()}
    assert index["sum"] == "READY" and index["broken"] == "FAILED"
    assert "broken" not in {m["name"] for m in await c.repository_index(ready=True)}
    await c.unload_model("sum")
    with pytest.raises(ServerError, match="not ready: unloaded"):
        await c.infer(request("sum", X))
    await c.load_model("sum")
    assert (await c.infer(request("sum", X))).outputs[0].as_numpy().tolist() == [6]


# -- errors, retries, timeouts --------------------------------------------------------------------
async def test_invalid_argument_carries_the_server_message(target, connect):
    with pytest.raises(ServerError) as info:
        await connect(target).infer(request("picky", X))
    err = info.value
    assert (err.status, err.grpc_code, err.code) == (400, "INVALID_ARGUMENT", ErrorCode.INVALID_INPUT)
    assert err.message == "picky wants exactly one positive number"
    assert str(err) == "gRPC INVALID_ARGUMENT: picky wants exactly one positive number"


async def test_no_retry_on_client_errors_or_internal(scripted, connect):
    for code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INTERNAL):
        servicer, url = await scripted(code)
        with pytest.raises(ServerError) as info:
            await connect(url, retries=3, **FAST).infer(request("m", X))
        assert info.value.grpc_code == code.name and len(servicer.calls) == 1


async def test_unavailable_is_retried_with_backoff(scripted, connect):
    servicer, url = await scripted(grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE, None)
    started = time.perf_counter()
    response = await connect(url, retries=3, backoff=0.05, max_backoff=1, headers={"x-tag": "t"}).infer(request("m", X))
    assert response.outputs[0].as_numpy().tolist() == [3]
    assert time.perf_counter() - started >= 0.025 + 0.05
    assert [call["x-tag"] for call in servicer.calls] == ["t", "t", "t"]  # metadata on every attempt
    servicer, url = await scripted(grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(ServerError) as info:
        await connect(url, retries=2, **FAST).infer(request("m", X))
    assert info.value.status == 503 and info.value.message == "scripted UNAVAILABLE"
    assert len(servicer.calls) == 3
    # Health checks report; they do not retry an answer.
    servicer, url = await scripted(None)
    with pytest.raises(ServerError):
        await connect(url, retries=3, **FAST).is_server_ready()
    assert len(servicer.calls) == 1


async def test_connection_refused(connect):
    import socket

    with socket.socket() as sock:  # bound by the OS, never listening: refused, and no one else gets the port
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        started = time.perf_counter()
        with pytest.raises(ConnectionFailed, match="Cannot reach"):
            await connect(f"127.0.0.1:{port}", retries=2, backoff=0.05, max_backoff=1).is_server_live()
        assert time.perf_counter() - started >= 0.025 + 0.05


async def test_timeout_fails_fast_and_is_not_retried(target, connect, scripted):
    servicer, url = await scripted(HOLD)  # never answers while the test runs
    with pytest.raises(RequestTimeout) as info:
        await connect(url, timeout=0.1, retries=3, **FAST).infer(request("m", X))
    assert info.value.code is ErrorCode.DEADLINE_EXCEEDED
    assert len(servicer.calls) == 1  # gave up on its own deadline, once: no retry
    servicer.release.set()
    c = connect(target, timeout=0.1, retries=3, **FAST)
    assert (await c.infer(request("aslow", X), timeout=5)).outputs[0].as_numpy().tolist() == [1.0]
    with pytest.raises(RequestTimeout):
        await connect(target, timeout=30).infer(request("aslow", X), timeout=0.1)


async def test_headers_reach_the_model_and_metadata_comes_back(target, connect):
    c = connect(target, headers={"X-Request-Tag": "from-client"})
    seen: dict = {}
    await c.infer(request("headers", X), response_headers=seen)
    assert seen["x-model-says"] == "hello" and seen["x-echo"] == "from-client"
    await c.infer(request("headers", X), headers={"x-request-tag": "from-call"}, response_headers=seen)
    assert seen["x-echo"] == "from-call"


async def test_channel_args_take_effect(target, connect):
    big = ("x", "FP32", np.zeros((1, 4096), np.float32))
    assert (await connect(target).infer(request("echo", big))).outputs[0].shape == [1, 4096]
    small = connect(target, channel_args=[("grpc.max_receive_message_length", 1024)])
    with pytest.raises(ServerError) as info:
        await small.infer(request("echo", big))
    assert info.value.grpc_code == "RESOURCE_EXHAUSTED"


# -- TLS ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def certs():
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client@example.com")
    return {
        "ca": ca.cert_pem.bytes(),
        "server_key": server.private_key_pem.bytes(),
        "server_chain": b"".join(p.bytes() for p in server.cert_chain_pems),
        "client_key": client.private_key_pem.bytes(),
        "client_chain": b"".join(p.bytes() for p in client.cert_chain_pems),
    }


@contextlib.asynccontextmanager
async def tls_server(certs, require_client_auth=False):
    """Our servicer (over a real data plane) on a grpc.aio server with TLS; yields host:port."""
    server = make_server()
    await server.repository.load_model(SumModel("sum"))
    door = grpc.aio.server()
    add_GRPCInferenceServiceServicer_to_server(InferenceServicer(server.dataplane), door)
    credentials = grpc.ssl_server_credentials(
        [(certs["server_key"], certs["server_chain"])], root_certificates=certs["ca"], require_client_auth=require_client_auth
    )
    port = door.add_secure_port("127.0.0.1:0", credentials)
    await door.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await door.stop(0)
        await server.stop(grace_period=1)


async def test_tls_with_root_certificates(certs, connect, tmp_path):
    ca_path = tmp_path / "ca.pem"
    ca_path.write_bytes(certs["ca"])
    async with tls_server(certs) as url:
        c = connect(url, root_certificates=str(ca_path))  # a path, as KServe takes it
        assert await c.is_server_live()
        assert (await c.infer(request("sum", X))).outputs[0].as_numpy().tolist() == [6]
        with pytest.raises(ConnectionFailed):
            await connect(url, use_ssl=True, retries=0).is_server_live()  # system roots do not know our CA
        with pytest.raises(ClientError):
            await connect(url, retries=0, timeout=2).is_server_live()  # plaintext to a TLS port
        creds = grpc.ssl_channel_credentials(certs["ca"])
        assert await connect(url, creds=creds).is_server_live()


async def test_tls_client_certificate(certs, connect):
    async with tls_server(certs, require_client_auth=True) as url:
        with pytest.raises(ConnectionFailed):
            await connect(url, root_certificates=certs["ca"], retries=0).is_server_live()
        c = connect(url, root_certificates=certs["ca"], private_key=certs["client_key"], certificate_chain=certs["client_chain"])
        assert await c.is_server_live()


def test_tls_failure_is_a_tls_error_when_the_handshake_says_so():
    from modelport.client._grpc import _translate

    class Fake(grpc.RpcError):
        def code(self):
            return grpc.StatusCode.UNAVAILABLE

        def details(self):
            return "failed to connect to all addresses; last error: UNKNOWN: Ssl handshake failed: CERTIFICATE_VERIFY_FAILED"

    assert isinstance(_translate(Fake(), "ServerLive", "h:1"), TLSError)


# -- the blocking client --------------------------------------------------------------------------
def test_sync_client():
    models = [SumModel("sum"), PickyModel(), HeadersModel(), AsyncSlowModel(delay=0.5)]
    with server_in_thread(models, enable_grpc=True) as server:
        with GRPCClient(f"127.0.0.1:{server.grpc_port}", headers={"x-request-tag": "sync"}) as c:
            assert c.is_server_live() and c.is_server_ready() and c.is_model_ready("sum")
            assert c.infer(request("sum", X)).outputs[0].as_numpy().tolist() == [6]
            seen: dict = {}
            c.infer(request("headers", X), response_headers=seen)
            assert seen["x-echo"] == "sync"
            with pytest.raises(ServerError, match="picky wants"):
                c.infer(request("picky", X))
            assert c.get_server_metadata()["name"] == "modelport"
            assert c.get_model_metadata("sum")["name"] == "sum"
            assert {m["name"] for m in c.repository_index()} == {"sum", "picky", "headers", "aslow"}
            c.unload_model("picky")
            c.load_model("picky")
            assert c.is_model_ready("picky")
            with pytest.raises(RequestTimeout):
                c.infer(request("aslow", X), timeout=0.1)
    with GRPCClient(f"127.0.0.1:{server.grpc_port}", retries=1, **FAST) as c, pytest.raises(ConnectionFailed):
        c.is_server_live()


def test_proto_types_stay_inside():
    """What the client returns is modelport's types and plain dicts, never protobuf."""
    assert not isinstance(convert.server_metadata_from_proto(pb.ServerMetadataResponse(name="n", version="v")), pb.ServerMetadataResponse)

"""The REST clients against real servers on real sockets: every method, every option, every failure.

Retries are counted on a tiny stdlib HTTP server that answers from a script; TLS runs against
uvicorn serving our RestApp with a certificate made at test time (trustme).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import socket
import ssl
import threading
import time

import numpy as np
import orjson
import pytest
import uvicorn

import modelport.client as client_pkg
from modelport import InferInput, InferOutput, InferRequest, InferResponse, RequestedOutput
from modelport.client import (
    AsyncRESTClient,
    ClientError,
    ConnectionFailed,
    InferenceRESTClient,
    RequestTimeout,
    RESTClient,
    RESTConfig,
    ServerError,
    TLSError,
)
from modelport.client._retry import RetryPolicy
from modelport.errors import ErrorCode
from modelport.wire import v2_json

from ..fixture_models import (
    AsyncSlowModel,
    BrokenLoadModel,
    DeclaredModel,
    EchoModel,
    ExplainModel,
    HeadersModel,
    PickyModel,
    SumModel,
)
from ..helpers import make_server, server_in_thread

FAST = {"backoff": 0.01, "max_backoff": 0.02}


def request(model: str, *tensors: tuple[str, str, np.ndarray], **kwargs) -> InferRequest:
    return InferRequest(model, [InferInput(n, list(a.shape), dt, a) for n, dt, a in tensors], **kwargs)


@pytest.fixture
async def url(serve):
    models = [SumModel("sum"), EchoModel(), PickyModel(), HeadersModel(), AsyncSlowModel(delay=0.5),
              ExplainModel("explainer"), DeclaredModel(), BrokenLoadModel("broken")]
    server, _ = await serve(models)
    return f"http://127.0.0.1:{server.http_port}"


@pytest.fixture
async def rest():
    clients = []

    def make(**config) -> AsyncRESTClient:
        c = AsyncRESTClient(RESTConfig(**config))
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.aclose()


# -- a scripted HTTP server, to count attempts and see the wire ----------------------------------
class Stub:
    """Answers each request with the next (status, body, headers) of ``script``, repeating the last."""

    def __init__(self, script: list[tuple[int, bytes, dict]], sock: socket.socket | None = None, hold: bool = False):
        self.script = list(script)
        self.requests: list[tuple[str, str, dict, bytes]] = []
        # with hold, each request is recorded and then left unanswered until release is set
        self.release = threading.Event()
        if not hold:
            self.release.set()
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                stub.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                stub.release.wait(60)
                status, out, headers = stub.script[min(len(stub.requests), len(stub.script)) - 1]
                self.send_response(status)
                for k, v in {"content-type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = _answer

        if sock is None:
            self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        else:  # a socket the test bound (port 0) before the server existed: it starts listening now
            self.server = http.server.ThreadingHTTPServer(sock.getsockname(), Handler, bind_and_activate=False)
            self.server.socket.close()
            self.server.socket = sock
            self.server.server_address = sock.getsockname()
            self.server.server_activate()
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def stub():
    stubs: list[Stub] = []

    def make(*script, sock: socket.socket | None = None, hold: bool = False) -> Stub:
        s = Stub(list(script), sock, hold)
        stubs.append(s)
        return s

    yield make
    for s in stubs:
        s.close()


def ok_v2(outputs=None) -> tuple[int, bytes, dict]:
    out = InferOutput("y", [2], "FP32")
    out.set_data_from_numpy(np.array([1.5, 2.5], np.float32), binary_data=False)
    body, _ = v2_json.encode_response(InferResponse("r1", "m", outputs or [out]))
    return 200, body, {}


def error(status: int, message: str) -> tuple[int, bytes, dict]:
    return status, orjson.dumps({"error": message}), {}


X = ("x", "FP32", np.array([[1, 2, 3]], np.float32))


# -- inference ----------------------------------------------------------------------------------
async def test_v2_infer_round_trips_every_datatype(url, rest):
    c = rest()
    tensors = [
        ("f32", "FP32", np.arange(6, dtype=np.float32).reshape(2, 3)),
        ("f16", "FP16", np.array([0.5, -1.25], np.float16)),
        ("i64", "INT64", np.array([2**40, -3], np.int64)),
        ("u8", "UINT8", np.array([[0, 255]], np.uint8)),
        ("b", "BOOL", np.array([True, False])),
        ("s", "BYTES", np.array([b"caf\xc3\xa9", b"\xff\x00raw"], dtype=object)),
    ]
    response = await c.infer(url, request("echo", *tensors, request_id="abc", parameters={"p": 1}))
    assert isinstance(response, InferResponse) and response.id == "abc" and response.model_name == "echo"
    for name, datatype, array in tensors:
        out = response.get_output_by_name(name)
        assert out.datatype == datatype and out.shape == list(array.shape)
        np.testing.assert_array_equal(out.as_numpy(), array)
    # The client asked for binary outputs (EchoModel echoes the request parameters).
    assert response.parameters == {"p": 1, "binary_data_output": True}


async def test_v2_infer_with_a_dict_and_requested_outputs(url, rest):
    c = rest()
    response = await c.infer(url, {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "INT32", "data": [1, 2]}]}, "sum")
    assert response.outputs[0].as_numpy().tolist() == [3]
    req = request("echo", ("a", "INT32", np.array([1], np.int32)), ("b", "INT32", np.array([2], np.int32)))
    req.request_outputs = [RequestedOutput("b")]
    response = await c.infer(url, req)
    assert [o.name for o in response.outputs] == ["b"]


async def test_binary_extension_on_the_wire(stub, rest):
    s = stub(ok_v2())
    response = await rest().infer(s.url, request("m", ("x", "FP32", np.array([1.0, 2.0], np.float32))))
    np.testing.assert_array_equal(response.outputs[0].as_numpy(), [1.5, 2.5])
    method, path, headers, body = s.requests[0]
    assert (method, path) == ("POST", "/v2/models/m/infer")
    length = int(headers["inference-header-content-length"])
    head = orjson.loads(body[:length])
    assert head["inputs"][0]["parameters"] == {"binary_data_size": 8} and "data" not in head["inputs"][0]
    assert head["parameters"] == {"binary_data_output": True}
    assert np.frombuffer(body[length:], "<f4").tolist() == [1.0, 2.0]
    # Both off: plain JSON, nothing asked of the server.
    await rest(binary_inputs=False, binary_outputs=False).infer(s.url, request("m", ("x", "FP32", np.array([1.0], np.float32))))
    _, _, headers, body = s.requests[1]
    assert "inference-header-content-length" not in headers
    assert orjson.loads(body) == {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1.0]}]}


async def test_binary_outputs_are_decoded(stub, rest):
    out = InferOutput("y", [3], "INT16")
    out.set_data_from_numpy(np.array([1, -2, 3], np.int16))
    body, length = v2_json.encode_response(InferResponse(None, "m", [out]), binary_outputs=True)
    assert length is not None
    s = stub((200, body, {"inference-header-content-length": str(length), "content-type": "application/octet-stream"}))
    response = await rest().infer(s.url, request("m", X))
    assert response.outputs[0].as_numpy().tolist() == [1, -2, 3]


async def test_graph_endpoint_posts_to_the_base_url(stub, rest):
    s = stub((200, b'{"predictions": [1]}', {}))
    assert await rest(protocol="v1").infer(s.url + "/", {"instances": [[1]]}, is_graph_endpoint=True) == {"predictions": [1]}
    assert s.requests[0][:2] == ("POST", "/")


async def test_v1_protocol(url, rest):
    c = rest(protocol="v1")
    assert await c.infer(url, {"instances": [[1, 2], [3, 4]]}, "sum") == {"predictions": [3, 7]}
    assert await c.explain(url, "explainer", {"instances": [[1]]}) == {"explanations": ["feature 0 matters"]}
    assert await c.is_server_live(url) and await c.is_server_ready(url)
    assert await c.is_model_ready(url, "sum") is True
    with pytest.raises(TypeError, match="dict"):
        await c.infer(url, request("sum", X))


async def test_health_and_metadata(url, rest):
    c = rest()
    assert await c.is_server_live(url) is True
    assert await c.is_server_ready(url) is False  # the broken model is not ready: 503 is an answer, not an error
    assert await c.is_model_ready(url, "sum") is True
    assert await c.is_model_ready(url, "broken") is False
    with pytest.raises(ServerError) as info:
        await c.is_model_ready(url, "nope")
    assert info.value.status == 404 and info.value.code is ErrorCode.NOT_FOUND
    meta = await c.get_server_metadata(url)
    assert meta["name"] == "modelport" and "binary_tensor_data" in meta["extensions"]
    assert (await c.get_model_metadata(url, "declared"))["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}]


async def test_repository(url, rest):
    c = rest()
    index = {m["name"]: m["state"] for m in await c.repository_index(url)}
    assert index["sum"] == "READY" and index["broken"] == "FAILED"
    assert "broken" not in {m["name"] for m in await c.repository_index(url, ready=True)}
    await c.unload_model(url, "sum")
    with pytest.raises(ServerError, match="not ready: unloaded"):
        await c.infer(url, request("sum", X))
    await c.load_model(url, "sum")
    assert (await c.infer(url, request("sum", X))).outputs[0].as_numpy().tolist() == [6]
    with pytest.raises(ServerError) as info:
        await c.unload_model(url, "nope")
    assert info.value.status == 404


# -- errors and retries -------------------------------------------------------------------------
async def test_400_carries_the_server_message(url, rest):
    with pytest.raises(ServerError) as info:
        await rest().infer(url, request("picky", X))
    err = info.value
    assert err.status == 400 and err.code is ErrorCode.INVALID_INPUT and err.grpc_code is None
    assert err.message == "picky wants exactly one positive number"
    assert str(err) == "HTTP 400: picky wants exactly one positive number"
    assert isinstance(err, ClientError)


async def test_no_retry_on_4xx_or_500(stub, rest):
    for status in (400, 404, 500, 501):
        s = stub(error(status, "no"))
        with pytest.raises(ServerError) as info:
            await rest(retries=3, **FAST).infer(s.url, request("m", X))
        assert info.value.status == status and len(s.requests) == 1


async def test_retries_503_with_backoff_then_succeeds(stub, rest):
    s = stub(error(503, "warming up"), error(503, "warming up"), ok_v2())
    started = time.perf_counter()
    response = await rest(retries=3, backoff=0.05, max_backoff=1).infer(s.url, request("m", X))
    elapsed = time.perf_counter() - started
    assert response.outputs[0].as_numpy().tolist() == [1.5, 2.5]
    assert len(s.requests) == 3
    assert elapsed >= 0.025 + 0.05  # two waits, each at least half of 0.05 * 2**n


async def test_retries_run_out(stub, rest):
    s = stub(error(502, "bad gateway"))
    with pytest.raises(ServerError) as info:
        await rest(retries=2, **FAST).infer(s.url, request("m", X))
    assert info.value.status == 502 and info.value.message == "bad gateway"
    assert len(s.requests) == 3


async def test_retry_statuses_option(stub, rest):
    s = stub(error(503, "busy"), ok_v2())
    with pytest.raises(ServerError):
        await rest(retry_statuses=(), **FAST).infer(s.url, request("m", X))
    assert len(s.requests) == 1
    s = stub(error(500, "flaky"), ok_v2())
    await rest(retry_statuses=(500,), **FAST).infer(s.url, request("m", X))
    assert len(s.requests) == 2


async def test_health_checks_do_not_retry_503(stub, rest):
    s = stub(error(503, "not ready"))
    assert await rest(retries=3, **FAST).is_server_ready(s.url) is False
    assert len(s.requests) == 1


async def test_connection_refused_is_retried_until_the_server_is_up(stub, rest):
    # A socket bound to a port the OS chose but not listening yet: connections are refused until the
    # stub starts listening on this same socket (no bind-close-reuse race).
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    c = rest(retries=0)
    with pytest.raises(ConnectionFailed, match="Cannot reach"):
        await c.is_server_live(f"127.0.0.1:{port}")
    # With retries, a server that comes up during the backoff is reached.
    call = asyncio.ensure_future(rest(retries=8, backoff=0.05, max_backoff=0.2).infer(f"http://127.0.0.1:{port}", request("m", X)))
    await asyncio.sleep(0.3)
    assert not call.done()
    s = stub(ok_v2(), sock=sock)
    response = await asyncio.wait_for(call, 10)
    assert response.outputs[0].name == "y" and len(s.requests) == 1


async def test_timeout_fails_fast_and_is_not_retried(url, stub, rest):
    held = stub(ok_v2(), hold=True)  # records the request and never answers it while the test runs
    with pytest.raises(RequestTimeout):
        await rest(timeout=0.1, retries=3, **FAST).infer(held.url, request("m", X))
    assert len(held.requests) == 1  # gave up on its own timeout, once: no retry
    c = rest(timeout=0.1, retries=3, **FAST)
    # A call's own timeout overrides the client's.
    assert (await c.infer(url, request("aslow", X), timeout=5)).outputs[0].as_numpy().tolist() == [1.0]
    with pytest.raises(RequestTimeout):
        await rest(timeout=30).infer(url, request("aslow", X), timeout=0.1)


async def test_headers_reach_the_model_and_response_headers_come_back(url, rest):
    c = rest(headers={"x-request-tag": "from-config"})
    seen: dict = {}
    await c.infer(url, request("headers", X), response_headers=seen)
    assert seen["x-model-says"] == "hello" and seen["x-echo"] == "from-config"
    await c.infer(url, request("headers", X), headers={"x-request-tag": "from-call"}, response_headers=seen)
    assert seen["x-echo"] == "from-call"
    v1_seen: dict = {}
    await rest(protocol="v1").infer(url, {"instances": [[1]]}, "headers", headers={"x-request-tag": "v1"}, response_headers=v1_seen)
    assert v1_seen["x-echo"] == "v1"


async def test_invalid_response_and_config_checks(stub, rest):
    s = stub((200, b"not json", {}))
    with pytest.raises(client_pkg.InvalidResponse):
        await rest().infer(s.url, request("m", X))
    with pytest.raises(ValueError, match="protocol"):
        RESTConfig(protocol="v3")
    with pytest.raises(ValueError, match="model_name"):
        await rest().infer(s.url, {"inputs": []})


def test_backoff_doubles_with_jitter_and_a_cap():
    policy = RetryPolicy(retries=5, backoff=0.1, max_backoff=0.3, statuses=frozenset())
    for _ in range(50):
        delays = [policy.delay(n) for n in range(5)]
        assert 0.05 <= delays[0] <= 0.1 and 0.1 <= delays[1] <= 0.2
        assert all(0.15 <= d <= 0.3 for d in delays[2:])


# -- TLS ----------------------------------------------------------------------------------------
class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):
        yield


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    trustme = pytest.importorskip("trustme")
    folder = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client@example.com")
    paths = {name: str(folder / name) for name in ("ca.pem", "server.key", "server.pem", "client.key", "client.pem", "client-both.pem")}
    ca.cert_pem.write_to_path(paths["ca.pem"])
    server.private_key_pem.write_to_path(paths["server.key"])
    server.cert_chain_pems[0].write_to_path(paths["server.pem"])
    client.private_key_pem.write_to_path(paths["client.key"])
    client.cert_chain_pems[0].write_to_path(paths["client.pem"])
    client.private_key_and_cert_chain_pem.write_to_path(paths["client-both.pem"])
    return paths


@contextlib.asynccontextmanager
async def tls_server(certs, close_clients, require_client_cert=False):
    """Our RestApp behind uvicorn with TLS on a free port; yields the host:port."""
    server = make_server()
    await server.repository.load_model(SumModel("sum"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        server.app, lifespan="off", log_config=None, access_log=False,
        ssl_keyfile=certs["server.key"], ssl_certfile=certs["server.pem"], ssl_ca_certs=certs["ca.pem"],
        ssl_cert_reqs=ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_NONE,
    )
    web = _Uvicorn(config)
    task = asyncio.ensure_future(web.serve(sockets=[sock]))
    while not web.started:
        await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await close_clients()
        web.should_exit = True
        await task
        sock.close()
        await server.stop(grace_period=1)


@pytest.fixture
async def tls_rest():
    """Clients for the TLS server, closed before it stops (an open TLS connection holds its shutdown)."""
    clients: list[AsyncRESTClient] = []

    def make(**config) -> AsyncRESTClient:
        c = AsyncRESTClient(RESTConfig(**config))
        clients.append(c)
        return c

    async def close_all() -> None:
        for c in clients:
            await c.aclose()

    make.close_all = close_all
    return make


async def test_tls_verify_with_a_ca_bundle(certs, tls_rest):
    rest = tls_rest
    async with tls_server(certs, rest.close_all) as host:
        c = rest(https=True, verify=certs["ca.pem"])
        assert await c.is_server_ready(host)  # no scheme: https because of the option
        assert (await c.infer(host, request("sum", X))).outputs[0].as_numpy().tolist() == [6]
        with pytest.raises(TLSError, match="CERTIFICATE_VERIFY_FAILED"):
            await rest(https=True, retries=3).is_server_live(host)  # system trust does not know our CA
        assert await rest(https=True, verify=False).is_server_live(host)
        ctx = ssl.create_default_context(cafile=certs["ca.pem"])
        assert await rest(verify=ctx).is_server_live("https://" + host)
        with pytest.raises(ConnectionFailed):
            await rest(retries=0).is_server_live(host)  # plain HTTP to a TLS port


async def test_tls_client_certificate(certs, tls_rest):
    rest = tls_rest
    async with tls_server(certs, rest.close_all, require_client_cert=True) as host:
        with pytest.raises(ConnectionFailed):
            await rest(https=True, verify=certs["ca.pem"], retries=0).is_server_live(host)
        c = rest(https=True, verify=certs["ca.pem"], cert=(certs["client.pem"], certs["client.key"]))
        assert await c.is_server_live(host)
        assert await rest(https=True, verify=certs["ca.pem"], cert=certs["client-both.pem"]).is_server_live(host)


# -- the blocking client and the exports --------------------------------------------------------
def test_sync_client():
    with server_in_thread([SumModel("sum"), PickyModel(), HeadersModel()]) as server:
        url = f"http://127.0.0.1:{server.http_port}"
        with RESTClient(RESTConfig(headers={"x-request-tag": "sync"})) as c:
            assert c.is_server_live(url) and c.is_server_ready(url) and c.is_model_ready(url, "sum")
            assert c.infer(url, request("sum", X)).outputs[0].as_numpy().tolist() == [6]
            seen: dict = {}
            c.infer(url, request("headers", X), response_headers=seen)
            assert seen["x-echo"] == "sync"
            with pytest.raises(ServerError, match="picky wants"):
                c.infer(url, request("picky", X))
            assert c.get_server_metadata(url)["name"] == "modelport"
            assert {m["name"] for m in c.repository_index(url)} == {"sum", "picky", "headers"}
            c.unload_model(url, "picky")
            c.load_model(url, "picky")
            assert c.get_model_metadata(url, "sum")["name"] == "sum"
        v1 = RESTClient(RESTConfig(protocol="v1"))
        assert v1.infer(url, {"instances": [[1, 2]]}, "sum") == {"predictions": [3]}
        v1.close()
    with socket.socket() as closed:  # bound, never listening: refused
        closed.bind(("127.0.0.1", 0))
        with RESTClient(RESTConfig(retries=1, **FAST)) as c, pytest.raises(ConnectionFailed):
            c.is_server_live(f"127.0.0.1:{closed.getsockname()[1]}")


def test_exports():
    assert InferenceRESTClient is AsyncRESTClient and client_pkg.InferenceRESTClientSync is RESTClient
    assert client_pkg.InferenceGRPCClient is client_pkg.AsyncGRPCClient
    public = {name for name in dir(client_pkg) if not name.startswith("_") and name[0].isupper()}
    assert public == set(client_pkg.__all__)

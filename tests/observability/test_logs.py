"""Request ids, structured (JSON) logs with the request's context, and the access log: REST and gRPC."""

from __future__ import annotations

import json
import logging

import grpc
import grpc.aio
import numpy as np
import pytest

from modelport import Model, get_predict_input, get_predict_response
from modelport.observability.logs import ACCESS_LOGGER, JsonFormatter
from modelport.wire.grpc import grpc_predict_v2_pb2 as pb
from modelport.wire.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from ..fixture_models import FailingModel, SumModel
from ..grpc_helpers import infer_request

V2 = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}


class LoggingModel(Model):
    """Logs from a sync predict (run in a hook thread): the line must carry the request's context."""

    def __init__(self, name="chatty"):
        super().__init__(name)
        self.ready = True

    def predict(self, payload, headers=None):
        logging.getLogger("tests.chatty").info("predicting")
        x = np.asarray(get_predict_input(payload))
        return get_predict_response(payload, x.sum(axis=-1), self.name)


class Lines(logging.Handler):
    """Formats records as the server's JSON log lines and keeps them."""

    def __init__(self):
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record):
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def captured():
    handler = Lines()
    loggers = [logging.getLogger(name) for name in (ACCESS_LOGGER, "tests.chatty")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield handler.lines
    for logger in loggers:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


async def test_rest_request_id_taken_or_made_and_echoed(serve):
    server, client = await serve([SumModel("sum"), FailingModel()])
    r = await client.post("/v2/models/sum/infer", json=V2, headers={"x-request-id": "abc-123"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "abc-123"
    made = (await client.post("/v2/models/sum/infer", json=V2)).headers["x-request-id"]
    assert len(made) == 32 and int(made, 16) >= 0
    assert (await client.post("/v2/models/sum/infer", json=V2)).headers["x-request-id"] != made
    # Every response, errors and health included.
    r = await client.post("/v2/models/failing/infer", json=V2, headers={"x-request-id": "bad-1"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "bad-1"
    # A made id is the one the error message quotes and the server log files the traceback under.
    r = await client.post("/v2/models/failing/infer", json=V2)
    assert r.status_code == 500 and f"request id {r.headers['x-request-id']}" in r.json()["error"]
    assert (await client.get("/v2/models/nope")).headers["x-request-id"]
    assert (await client.get("/v2/health/ready")).headers["x-request-id"]
    # An overlong id is replaced, not echoed.
    r = await client.post("/v2/models/sum/infer", json=V2, headers={"x-request-id": "x" * 129})
    assert r.status_code == 200 and len(r.headers["x-request-id"]) == 32
    assert (await client.post("/v2/models/sum/infer", json=V2)).status_code == 200



class CountModel(Model):
    """Streams ``n`` V2 responses when asked to (/infer_stream); answers once otherwise."""

    def __init__(self, name="count"):
        super().__init__(name)
        self.ready = True

    def predict(self, payload, headers=None):
        x = np.asarray(get_predict_input(payload))
        for i in range(2):
            yield get_predict_response(payload, x + i, self.name)


@pytest.mark.parametrize("access_log", [False, True])
async def test_every_kind_of_answer_echoes_the_request_id(serve, access_log):
    # Each layer that starts an answer adds the id: the REST app (JSON and binary parts), the stream
    # sender, the controls' refusals and CORS preflights; with the access log on, the edge wraps send instead.
    server, client = await serve([SumModel("sum"), CountModel()], access_log=access_log, api_keys=["k" * 24],
                                 cors_origins=["https://ui.example"])
    key = {"authorization": "Bearer " + "k" * 24}
    r = await client.post("/v2/models/sum/infer", json=V2, headers={**key, "x-request-id": "json-1"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "json-1"
    assert r.headers.get_list("x-request-id") == ["json-1"], "sent once"
    binary = {**V2, "parameters": {"binary_data_output": True}}
    r = await client.post("/v2/models/sum/infer", json=binary, headers={**key, "x-request-id": "bin-1"})
    assert r.status_code == 200 and "inference-header-content-length" in r.headers
    assert r.headers.get_list("x-request-id") == ["bin-1"]
    r = await client.post("/v2/models/count/infer_stream", json=V2, headers={**key, "x-request-id": "sse-1"})
    assert r.status_code == 200 and r.text.count("data:") == 2
    assert r.headers.get_list("x-request-id") == ["sse-1"]
    r = await client.post("/v2/models/sum/infer", json=V2, headers={"x-request-id": "no-key-1"})
    assert r.status_code == 401 and r.headers.get_list("x-request-id") == ["no-key-1"]
    r = await client.options("/v2/models/sum/infer", headers={"origin": "https://ui.example", "x-request-id": "pre-1",
                                                              "access-control-request-method": "POST"})
    assert r.status_code == 204 and r.headers.get_list("x-request-id") == ["pre-1"]
    r = await client.post("/v2/models/sum/infer", json=V2, headers={**key, "origin": "https://ui.example", "x-request-id": "cors-1"})
    assert r.status_code == 200 and r.headers.get_list("x-request-id") == ["cors-1"]
    assert r.headers["access-control-allow-origin"] == "https://ui.example"

async def test_grpc_request_id_in_trailing_metadata(serve):
    server, _ = await serve([SumModel("sum"), FailingModel()], enable_grpc=True)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = GRPCInferenceServiceStub(channel)
        x = ("x", "FP32", np.array([[1, 2]], dtype=np.float32))
        call = stub.ModelInfer(infer_request("sum", x), metadata=(("x-request-id", "grpc-7"),))
        await call
        assert dict(await call.trailing_metadata())["x-request-id"] == "grpc-7"
        call = stub.ModelInfer(infer_request("sum", x))
        await call
        assert len(dict(await call.trailing_metadata())["x-request-id"]) == 32
        # The failure case carries it too, and the server goes on serving.
        call = stub.ModelInfer(infer_request("failing", x), metadata=(("x-request-id", "grpc-8"),))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INTERNAL
        assert dict(caught.value.trailing_metadata())["x-request-id"] == "grpc-8"
        assert "request id grpc-8" in caught.value.details()  # the id the log files the traceback under
        assert (await stub.ModelInfer(infer_request("sum", x))).outputs


async def test_json_logs_carry_the_request_context(serve, captured):
    server, client = await serve([LoggingModel()], log_format="json")
    r = await client.post("/v2/models/chatty/infer", json=V2, headers={"x-request-id": "ctx-1"})
    assert r.status_code == 200
    (line,) = [doc for doc in captured if doc["logger"] == "tests.chatty"]
    assert line["message"] == "predicting" and line["level"] == "info" and line["timestamp"].endswith("Z")
    assert (line["request_id"], line["model"], line["protocol"]) == ("ctx-1", "chatty", "rest")
    assert not [doc for doc in captured if doc["logger"] == ACCESS_LOGGER]  # access log is off by default


async def test_access_log_rest_and_grpc(serve, captured):
    server, client = await serve([SumModel("sum")], access_log=True, enable_grpc=True)
    await client.post("/v2/models/sum/infer", json=V2, headers={"x-request-id": "acc-1"})
    await client.get("/v2/models/nope")  # the failure case is logged with its status
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = GRPCInferenceServiceStub(channel)
        x = ("x", "FP32", np.array([[1, 2]], dtype=np.float32))
        await stub.ModelInfer(infer_request("sum", x), metadata=(("x-request-id", "acc-2"),))
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.ModelInfer(infer_request("nope", x))
    access = [doc for doc in captured if doc["logger"] == ACCESS_LOGGER]
    ok, missing, grpc_ok, grpc_missing = access
    assert (ok["method"], ok["path"], ok["status"], ok["request_id"], ok["model"]) == ("POST", "/v2/models/sum/infer", 200, "acc-1", "sum")
    assert ok["bytes"] > 0 and ok["duration_ms"] > 0 and ok["client"].startswith("127.0.0.1:")
    assert (missing["path"], missing["status"]) == ("/v2/models/nope", 404)
    assert (grpc_ok["path"], grpc_ok["status"], grpc_ok["request_id"], grpc_ok["protocol"]) == (
        "/inference.GRPCInferenceService/ModelInfer", "OK", "acc-2", "grpc")
    assert grpc_ok["bytes"] > 0
    assert grpc_missing["status"] == "NOT_FOUND"
    assert (await client.post("/v2/models/sum/infer", json=V2)).status_code == 200


def test_access_log_sampling(captured):
    import httpx

    from ..helpers import server_in_thread

    def access_lines() -> int:
        return len([doc for doc in captured if doc["logger"] == ACCESS_LOGGER])

    with server_in_thread([SumModel("sum")], access_log=True, access_log_sample=0.0) as server:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}") as client:
            for _ in range(5):
                assert client.post("/v2/models/sum/infer", json=V2).status_code == 200
    assert access_lines() == 0
    with server_in_thread([SumModel("sum")], access_log=True, access_log_sample=0.5) as server:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}") as client:
            for _ in range(200):
                assert client.get("/v2/health/live").status_code == 200
    assert 40 < access_lines() < 160  # binomial(200, 0.5): outside this range about once in 10^16


def test_cli_access_log_flag_writes_json_lines(served):
    from ..e2e.serving import LOOPBACK, wait_ready

    s = served(*LOOPBACK, "--access-log", "true", "--log-format", "json")
    url = s.http_url()
    wait_ready(url)
    import httpx

    r = httpx.post(url + "/v2/models/iris/infer", json={"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]},
                   headers={"x-request-id": "cli-1"})
    assert r.status_code == 200, r.text
    line = s.wait_for(r'\{[^\n]*"request_id": "cli-1"[^\n]*\}').group(0)
    doc = json.loads(line)
    assert (doc["logger"], doc["path"], doc["status"], doc["model"]) == ("modelport.access", "/v2/models/iris/infer", 200, "iris")
    assert httpx.get(url + "/v2/models/nope").status_code == 404
    s.wait_for(r'"path": "/v2/models/nope", "status": 404')
    assert s.stop() == 0


async def test_refusals_by_the_controls_carry_the_id_and_are_logged(serve, captured):
    server, client = await serve([SumModel("sum")], access_log=True, api_keys="k1")
    r = await client.post("/v2/models/sum/infer", json=V2, headers={"x-request-id": "denied-1"})
    assert r.status_code == 401 and r.headers["x-request-id"] == "denied-1"
    (line,) = [doc for doc in captured if doc["logger"] == ACCESS_LOGGER]
    assert (line["status"], line["request_id"], line["path"]) == (401, "denied-1", "/v2/models/sum/infer")
    r = await client.post("/v2/models/sum/infer", json=V2, headers={"authorization": "Bearer k1"})
    assert r.status_code == 200 and len(r.headers["x-request-id"]) == 32

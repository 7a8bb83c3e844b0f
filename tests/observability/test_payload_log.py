"""Payload logging as KServe's logger does it: CloudEvents to a real HTTP sink on loopback and to a file,
through a bounded queue that never slows or fails inference (a slow or dead sink: drops are counted)."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc.aio
import numpy as np
import pytest

from modelport.settings import SettingsError, model_settings_from_dict
from modelport.wire.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from ..fixture_models import FailingModel, SumModel
from ..grpc_helpers import infer_request
from ..ports import refused_port

V2 = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.gate.wait(30)  # a slow sink holds every request until the test opens the gate
        self.server.events.append(({k.lower(): v for k, v in self.headers.items()}, json.loads(body)))
        self.send_response(202)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def sink():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    httpd.daemon_threads = True
    httpd.events = []
    httpd.gate = threading.Event()
    httpd.gate.set()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.gate.set()
    httpd.shutdown()
    httpd.server_close()


async def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def logged(name: str, config: dict, cls=SumModel):
    model = cls(name)
    model.payload_log = config  # as "payload_log" in model-settings.json
    return model


def counter(text: str, model: str, outcome: str) -> float:
    match = re.search(rf'modelport_payload_log_events_total{{model="{model}",outcome="{outcome}"}} (\S+)', text)
    return float(match.group(1)) if match else 0.0


async def test_request_and_response_events_over_rest_and_grpc(serve, sink):
    server, client = await serve([logged("sum", {"url": sink.url, "mode": "all", "source": "http://iris"})], enable_grpc=True)
    r = await client.post("/v2/models/sum/infer", json=V2, headers={"x-request-id": "pl-1"})
    assert r.status_code == 200
    await wait_for(lambda: len(sink.events) == 2)
    by_type = {h["ce-type"]: (h, body) for h, body in sink.events}
    request_headers, request_body = by_type["org.kubeflow.serving.inference.request"]
    response_headers, response_body = by_type["org.kubeflow.serving.inference.response"]
    for headers in (request_headers, response_headers):
        assert headers["ce-id"] == "pl-1" and headers["ce-specversion"] == "1.0" and headers["ce-source"] == "http://iris"
        assert headers["ce-inferenceservicename"] == "sum" and headers["content-type"] == "application/json"
        assert headers["ce-time"].endswith("Z")
    assert request_body["inputs"][0]["name"] == "x" and request_body["inputs"][0]["data"] == [1.0, 2.0]
    assert response_body["outputs"][0]["data"] == [3.0]

    # V1 and gRPC log too; the event id is the request id the transport took or made.
    sink.events.clear()
    r = await client.post("/v1/models/sum:predict", json={"instances": [[1, 2]]})
    await wait_for(lambda: len(sink.events) == 2)
    assert {h["ce-id"] for h, _ in sink.events} == {r.headers["x-request-id"]}
    assert {json.dumps(b) for _, b in sink.events} == {json.dumps({"instances": [[1, 2]]}), json.dumps({"predictions": [3]})}
    sink.events.clear()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        x = ("x", "FP32", np.array([[1, 2]], dtype=np.float32))
        await GRPCInferenceServiceStub(channel).ModelInfer(infer_request("sum", x), metadata=(("x-request-id", "pl-g"),))
    await wait_for(lambda: len(sink.events) == 2)
    assert {h["ce-id"] for h, _ in sink.events} == {"pl-g"}
    metrics = (await client.get("/metrics")).text
    assert counter(metrics, "sum", "sent") == 6 and counter(metrics, "sum", "dropped") == 0


async def test_modes_and_a_failed_request(serve, sink):
    server, client = await serve([
        logged("req", {"url": sink.url, "mode": "request"}),
        logged("resp", {"url": sink.url, "mode": "response"}),
        logged("failing", {"url": sink.url}, FailingModel),
    ])
    assert (await client.post("/v2/models/req/infer", json=V2)).status_code == 200
    assert (await client.post("/v2/models/resp/infer", json=V2)).status_code == 200
    assert (await client.post("/v2/models/failing/infer", json=V2)).status_code == 500
    await wait_for(lambda: len(sink.events) == 3)
    seen = sorted((h["ce-inferenceservicename"], h["ce-type"].rsplit(".", 1)[1]) for h, _ in sink.events)
    assert seen == [("failing", "request"), ("req", "request"), ("resp", "response")]
    assert (await client.post("/v2/models/req/infer", json=V2)).status_code == 200


async def test_file_sink_writes_structured_cloudevents(serve, tmp_path):
    path = tmp_path / "events.jsonl"
    server, client = await serve([logged("sum", {"file": str(path)})])
    r = await client.post("/v2/models/sum/infer", json=V2, headers={"x-request-id": "f-1"})
    assert r.status_code == 200
    await wait_for(lambda: path.exists() and len(path.read_text().splitlines()) == 2)
    request, response = (json.loads(line) for line in path.read_text().splitlines())
    assert request["type"] == "org.kubeflow.serving.inference.request" and request["id"] == "f-1"
    assert request["specversion"] == "1.0" and request["datacontenttype"] == "application/json"
    assert request["data"]["inputs"][0]["data"] == [1.0, 2.0] and response["data"]["outputs"][0]["data"] == [3.0]


async def test_a_slow_sink_never_slows_inference_and_drops_are_counted(serve, sink):
    sink.gate.clear()  # the sink takes no event until the end of the test
    server, client = await serve([logged("sum", {"url": sink.url, "queue_size": 2})])
    for _ in range(20):
        assert (await client.post("/v2/models/sum/infer", json=V2)).status_code == 200
    metrics = (await client.get("/metrics")).text
    # 40 events: one in the sender, two queued, the rest dropped.
    assert counter(metrics, "sum", "dropped") >= 40 - 3, metrics
    # All 20 answers came back while the sink had taken no event at all: inference never waits for it.
    assert sink.events == []
    sink.gate.set()
    await wait_for(lambda: len(sink.events) >= 1)
    assert (await client.post("/v2/models/sum/infer", json=V2)).status_code == 200


async def test_a_dead_sink_fails_events_not_inference(serve):
    with refused_port() as port:  # bound, never listening: every event is refused
        server, client = await serve([logged("sum", {"url": f"http://127.0.0.1:{port}/", "timeout": 2})])
        for _ in range(3):
            assert (await client.post("/v2/models/sum/infer", json=V2)).status_code == 200

        async def failed() -> float:
            return counter((await client.get("/metrics")).text, "sum", "failed")

        deadline = time.monotonic() + 30
        while await failed() < 6:
            assert time.monotonic() < deadline, "events to a dead sink were not counted as failed"
            await asyncio.sleep(0.05)
        assert (await client.post("/v2/models/sum/infer", json=V2)).status_code == 200


def test_payload_log_settings_are_checked():
    s = model_settings_from_dict({"name": "m", "payload_log": {"url": "http://sink", "mode": "response"}})
    assert s.payload_log["mode"] == "response"
    with pytest.raises(SettingsError, match="mode must be all, request or response"):
        model_settings_from_dict({"name": "m", "payload_log": {"url": "http://sink", "mode": "both"}})
    with pytest.raises(SettingsError, match="needs a \"url\" or a \"file\""):
        model_settings_from_dict({"name": "m", "payload_log": {"mode": "all"}})
    with pytest.raises(SettingsError, match="unknown payload_log key"):
        model_settings_from_dict({"name": "m", "payload_log": {"url": "http://sink", "sink": "x"}})
    with pytest.raises(SettingsError, match="queue_size"):
        model_settings_from_dict({"name": "m", "payload_log": {"url": "http://sink", "queue_size": 0}})

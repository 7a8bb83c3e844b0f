"""OpenTelemetry tracing: spans per request and stage, W3C traceparent in and out (REST, gRPC, and a
transformer's call to its predictor), the SDK's in-memory exporter and a real OTLP/HTTP receiver."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import grpc.aio
import numpy as np
import pytest

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

from modelport import Model  # noqa: E402
from modelport.wire.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub  # noqa: E402

from ..e2e.serving import REPO  # noqa: E402
from ..fixture_models import FailingModel, PrePostModel, SumModel  # noqa: E402
from ..grpc_helpers import infer_request  # noqa: E402

V2 = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}
TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = f"00-{TRACE}-b7ad6b7169203331-01"


@pytest.fixture
def exporter():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    exporter.provider = provider
    return exporter


def by_name(spans):
    return {s.name: s for s in spans}


async def test_rest_request_span_with_stage_children(serve, exporter):
    server, client = await serve([PrePostModel(), FailingModel()], tracer_provider=exporter.provider)
    r = await client.post("/v2/models/prepost/infer", json=V2, headers={"traceparent": PARENT, "x-request-id": "t-1"})
    assert r.status_code == 200
    spans = exporter.get_finished_spans()
    root = next(s for s in spans if s.kind is SpanKind.SERVER)
    assert root.name == "POST /v2/models/{model_name}/infer"  # the declared route, not the raw path
    assert f"{root.context.trace_id:032x}" == TRACE and f"{root.parent.span_id:016x}" == "b7ad6b7169203331"
    assert root.attributes["modelport.model"] == "prepost" and root.attributes["modelport.request_id"] == "t-1"
    assert root.attributes["http.response.status_code"] == 200
    children = by_name(s for s in spans if s is not root)
    assert set(children) == {"decode", "queue", "preprocess", "predict", "postprocess", "encode"}
    for child in children.values():
        assert child.parent.span_id == root.context.span_id
        assert root.start_time <= child.start_time <= child.end_time <= root.end_time
    order = [children[n] for n in ("decode", "preprocess", "predict", "postprocess", "encode")]
    assert all(a.start_time <= b.start_time for a, b in zip(order, order[1:]))
    # The response names the server's span as the caller's next parent.
    assert r.headers["traceparent"] == f"00-{TRACE}-{root.context.span_id:016x}-01"

    # Failure: the span is an error; a request without traceparent starts a new trace; normal afterwards.
    exporter.clear()
    assert (await client.post("/v2/models/failing/infer", json=V2)).status_code == 500
    failed = next(s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER)
    assert failed.status.status_code is StatusCode.ERROR and f"{failed.context.trace_id:032x}" != TRACE
    r = await client.post("/v2/models/prepost/infer", json=V2, headers={"traceparent": "garbage"})
    assert r.status_code == 200 and r.headers["traceparent"].startswith("00-")


async def test_grpc_traceparent_in_and_out(serve, exporter):
    server, _ = await serve([SumModel("sum")], enable_grpc=True, tracer_provider=exporter.provider)
    x = ("x", "FP32", np.array([[1, 2]], dtype=np.float32))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = GRPCInferenceServiceStub(channel)
        call = stub.ModelInfer(infer_request("sum", x), metadata=(("traceparent", PARENT),))
        await call
        trailing = dict(await call.trailing_metadata())
        root = next(s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER)
        assert root.name == "/inference.GRPCInferenceService/ModelInfer" and f"{root.context.trace_id:032x}" == TRACE
        assert trailing["traceparent"] == f"00-{TRACE}-{root.context.span_id:016x}-01"
        assert {s.name for s in exporter.get_finished_spans()} >= {"decode", "queue", "predict", "encode"}
        exporter.clear()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ModelInfer(infer_request("nope", x), metadata=(("traceparent", PARENT),))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        failed = next(s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER)
        assert failed.status.status_code is StatusCode.ERROR and failed.attributes["rpc.grpc.status_code"] == "NOT_FOUND"
        assert (await stub.ModelInfer(infer_request("sum", x))).outputs


@pytest.mark.parametrize("protocol", ["v2", "grpc-v2"])
async def test_transformer_calls_its_predictor_under_the_request_span(serve, exporter, protocol):
    predictor, _ = await serve([SumModel("m")], enable_grpc=protocol == "grpc-v2", tracer_provider=exporter.provider)
    port = predictor.grpc_port if protocol == "grpc-v2" else predictor.http_port
    transformer, client = await serve([Model("m")], predictor_host=f"127.0.0.1:{port}", predictor_protocol=protocol,
                                      tracer_provider=exporter.provider)
    r = await client.post("/v2/models/m/infer", json=V2, headers={"traceparent": PARENT})
    assert r.status_code == 200, r.text
    servers = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    inner, outer = servers  # the predictor's span ends first
    assert outer.name == "POST /v2/models/{model_name}/infer" and f"{outer.parent.span_id:016x}" == "b7ad6b7169203331"
    assert inner.context.trace_id == outer.context.trace_id and inner.parent.span_id == outer.context.span_id


class _Receiver(BaseHTTPRequestHandler):
    """A minimal OTLP/HTTP collector: decodes each export request with opentelemetry-proto."""

    def do_POST(self):  # noqa: N802 - http.server's naming
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        body = self.rfile.read(int(self.headers["content-length"]))
        request = ExportTraceServiceRequest.FromString(body)
        self.server.received.append((self.path, self.headers.get("content-type"), request))
        payload = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    httpd.received = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


async def test_otlp_http_export_configured_by_otel_env(receiver, serve, monkeypatch):  # receiver outlives the server
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{receiver.server_address[1]}")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "iris-service")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    server, client = await serve([SumModel("sum")], enable_tracing=True)
    r = await client.post("/v2/models/sum/infer", json=V2, headers={"traceparent": PARENT})
    assert r.status_code == 200
    assert (await client.get("/v2/models/nope")).status_code == 404
    deadline = time.monotonic() + 30
    names: set[str] = set()
    while time.monotonic() < deadline and not {"POST /v2/models/{model_name}/infer", "GET /v2/models/{model_name}", "predict"} <= names:
        names = set()
        for path, content_type, request in list(receiver.received):
            assert path == "/v1/traces" and content_type == "application/x-protobuf"
            for resource_spans in request.resource_spans:
                attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                assert attrs["service.name"] == "iris-service"
                for scope in resource_spans.scope_spans:
                    names |= {span.name for span in scope.spans}
                    for span in scope.spans:
                        if span.name == "POST /v2/models/{model_name}/infer":
                            assert span.trace_id.hex() == TRACE
        await __import__("asyncio").sleep(0.05)
    assert {"POST /v2/models/{model_name}/infer", "GET /v2/models/{model_name}", "decode", "predict", "encode"} <= names, names
    assert (await client.post("/v2/models/sum/infer", json=V2)).status_code == 200


def test_tracing_off_imports_no_opentelemetry():
    code = (
        "import sys, asyncio\n"
        "from modelport import ModelServer\n"
        "from tests.fixture_models import SumModel\n"
        "async def main():\n"
        "    s = ModelServer(http_port=0, enable_grpc=False, host='127.0.0.1')\n"
        "    await s.start_async([SumModel('sum')])\n"
        "    await s.stop(grace_period=0)\n"
        "asyncio.run(main())\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')], 'imported'\n"
        "print('clean')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(REPO), timeout=60,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0 and "clean" in out.stdout, out.stderr

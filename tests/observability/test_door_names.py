"""Access log lines, span names and metrics labels name a request by the door it matched (modelport/doors.py):
the declared route, never the raw path, so a flood of distinct model names or typos stays a few names."""

from __future__ import annotations

import grpc
import grpc.aio
import numpy as np
import pytest

from modelport.observability.logs import ACCESS_LOGGER
from modelport.wire.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from ..fixture_models import SumModel
from ..grpc_helpers import infer_request
from .test_logs import captured  # noqa: F401 - the access log lines as JSON documents

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.trace import SpanKind  # noqa: E402

from .test_tracing import exporter  # noqa: E402,F401 - spans kept in memory

V2 = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}
LONG = "a-model-with-a-long-unique-name-" + "0123456789abcdef" * 3  # would be one span name per model if raw
INFER = "POST /v2/models/{model_name}/infer"
GRPC_INFER = "/inference.GRPCInferenceService/ModelInfer"


def server_spans(exporter):
    spans = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    exporter.clear()
    return spans


def access_lines(captured):  # noqa: F811
    lines = [doc for doc in captured if doc["logger"] == ACCESS_LOGGER]
    captured.clear()
    return lines


@pytest.mark.parametrize("keys", [None, ["k" * 24]], ids=["open", "controls"])
async def test_rest_names_by_the_declared_door(serve, exporter, captured, keys):  # noqa: F811
    # With api_keys the controls match the door; without, the REST app does: both leave it for the edge.
    auth = {"authorization": "Bearer " + "k" * 24} if keys else {}
    server, client = await serve([SumModel(LONG)], access_log=True, tracer_provider=exporter.provider, api_keys=keys)
    r = await client.post(f"/v2/models/{LONG}/infer", json=V2, headers=auth)
    assert r.status_code == 200, r.text
    (span,) = server_spans(exporter)
    assert span.name == INFER and span.attributes["http.route"] == "/v2/models/{model_name}/infer"
    assert span.attributes["url.path"] == f"/v2/models/{LONG}/infer"  # the raw path stays an attribute
    (line,) = access_lines(captured)
    assert (line["door"], line["door_kind"], line["path"], line["status"]) == (INFER, "infer", f"/v2/models/{LONG}/infer", 200)
    assert line["message"].endswith(f'door="{INFER}" infer')  # the plain line too, beside the raw path

    # A declared door whose model is missing: still the door's name (the 404 is the model's, not the route's).
    assert (await client.get(f"/v2/models/{LONG}-gone", headers=auth)).status_code == 404
    (span,) = server_spans(exporter)
    assert span.name == "GET /v2/models/{model_name}"
    assert access_lines(captured)[0]["door_kind"] == "read"

    # Undeclared paths and methods: one fixed name, whatever the path.
    for method, path in (("GET", f"/no/such/door/{LONG}"), ("GET", f"/v2/models/{LONG}/infer")):
        assert (await client.request(method, path, headers=auth)).status_code in (404, 405)
        (span,) = server_spans(exporter)
        assert span.name == "unmatched" and "http.route" not in span.attributes
        (line,) = access_lines(captured)
        assert (line["door"], line["door_kind"], line["path"]) == ("unmatched", None, path)


async def test_refused_request_names_its_door(serve, exporter, captured):  # noqa: F811
    server, client = await serve([SumModel(LONG)], access_log=True, tracer_provider=exporter.provider, api_keys=["k" * 24])
    assert (await client.post(f"/v2/models/{LONG}/infer", json=V2)).status_code == 401  # no key
    (span,) = server_spans(exporter)
    assert span.name == INFER
    (line,) = access_lines(captured)
    assert (line["door"], line["door_kind"], line["status"]) == (INFER, "infer", 401)


async def test_grpc_names_by_the_declared_method(serve, exporter, captured):  # noqa: F811
    server, _ = await serve([SumModel(LONG)], enable_grpc=True, access_log=True, tracer_provider=exporter.provider)
    x = ("x", "FP32", np.array([[1, 2]], dtype=np.float32))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = GRPCInferenceServiceStub(channel)
        assert (await stub.ModelInfer(infer_request(LONG, x))).outputs
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.ModelInfer(infer_request(LONG + "-gone", x))
    ok, missing = server_spans(exporter)
    assert ok.name == missing.name == GRPC_INFER and ok.attributes["rpc.method"] == GRPC_INFER
    ok, missing = access_lines(captured)
    assert (ok["door"], ok["door_kind"], ok["status"]) == (GRPC_INFER, "infer", "OK")
    assert (missing["door"], missing["status"]) == (GRPC_INFER, "NOT_FOUND")


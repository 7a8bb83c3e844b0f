"""Decoupled gRPC (ModelStreamInfer with many responses per request, many requests per stream), our
clients' stream methods (REST and gRPC, sync and async), tritonclient's stream API and the CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading

import grpc
import numpy as np
import pytest

from modelport.client import AsyncGRPCClient, AsyncRESTClient, GRPCClient, RESTClient, RESTConfig, ServerError
from modelport.types import InferInput, InferRequest
from modelport.wire.grpc import convert
from modelport.wire.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from ..fixture_models import SumModel
from ..helpers import server_in_thread
from .conftest import wait_for
from .models import AsyncTokens, SyncCounter


def count_request(n: int, model="counter", request_id=None) -> InferRequest:
    return InferRequest(model, [InferInput("n", [1], "INT64", np.array([n], np.int64))], request_id=request_id)


def final(msg) -> bool:
    return msg.infer_response.parameters["triton_final_response"].bool_param


async def test_decoupled_responses_and_final_flags(serve):
    server, _ = await serve([SyncCounter(), SumModel("sum")], enable_grpc=True)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = GRPCInferenceServiceStub(channel)
        requests = [
            convert.request_to_proto(count_request(3, request_id="a")),
            convert.request_to_proto(InferRequest("sum", [InferInput("x", [1, 2], "FP32", np.array([[1, 2]], np.float32))], request_id="b")),
            convert.request_to_proto(count_request(2, request_id="c")),
        ]
        answers = [msg async for msg in stub.ModelStreamInfer(iter(requests))]
    ids = [m.infer_response.id for m in answers]
    assert ids == ["a", "a", "a", "a", "b", "c", "c", "c"]
    assert [final(m) for m in answers] == [False, False, False, True, True, False, False, True]
    assert not answers[3].infer_response.outputs  # the empty final marker of a streaming model
    values = [convert.response_from_proto(m.infer_response).outputs[0].as_numpy().tolist() for m in answers if m.infer_response.outputs]
    assert values == [[0], [1], [2], [3.0], [0], [1]]


async def test_grpc_error_mid_stream_and_the_stream_goes_on(serve):
    server, _ = await serve([SyncCounter(fail_at=1)], enable_grpc=True)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = GRPCInferenceServiceStub(channel)
        requests = [convert.request_to_proto(count_request(3, request_id=i)) for i in ("1", "2")]
        answers = [msg async for msg in stub.ModelStreamInfer(iter(requests))]
    failed = "Model counter failed while serving the request; see the server log (request id {})"
    assert [(m.infer_response.id, m.error_message) for m in answers] == [
        ("1", ""), ("1", failed.format(1)), ("2", ""), ("2", failed.format(2))
    ]


async def test_grpc_cancel_stops_the_generator(serve):
    model = SyncCounter(delay=0.02)
    server, _ = await serve([model], enable_grpc=True)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        call = GRPCInferenceServiceStub(channel).ModelStreamInfer()
        await call.write(convert.request_to_proto(count_request(100000)))
        for _ in range(3):
            await call.read()
        call.cancel()
    await wait_for(model.closed.is_set, what="the generator to be closed")
    assert model.produced <= 6
    await wait_for(lambda: server.dataplane.in_flight().get("counter") == 0, what="the request to be released")


async def test_async_clients_stream(serve):
    server, _ = await serve([SyncCounter(), AsyncTokens(fail_at=2)], enable_grpc=True)
    url = f"http://127.0.0.1:{server.http_port}"
    async with AsyncRESTClient(RESTConfig(protocol="v2")) as rest:
        got = [r.outputs[0].as_numpy().tolist() async for r in rest.infer_stream(url, count_request(3))]
        assert got == [[0], [1], [2]]
        chunks = []
        with pytest.raises(ServerError, match="Model tokens failed while serving the request"):
            async for doc in rest.generate_stream(url, "tokens", {"text_input": "a b c d"}):
                chunks.append(doc["text_output"])
        assert chunks == ["a ", "b "]
        with pytest.raises(ServerError, match="not found"):
            async for _ in rest.infer_stream(url, count_request(3, model="nope")):
                pass
    async with AsyncRESTClient(RESTConfig(protocol="v1")) as rest:
        assert [d async for d in rest.infer_stream(url, {"instances": [2]}, "counter")] == [{"i": 0}, {"i": 1}]
    async with AsyncGRPCClient(f"127.0.0.1:{server.grpc_port}") as client:
        got = [r.outputs[0].as_numpy().tolist() async for r in client.infer_stream([count_request(2), count_request(1)])]
        assert got == [[0], [1], [0]]


def test_sync_clients_tritonclient_and_cli():
    model = SyncCounter()
    with server_in_thread([model], enable_grpc=True) as server:
        url = f"http://127.0.0.1:{server.http_port}"
        with RESTClient() as rest:
            assert [r.outputs[0].as_numpy().tolist() for r in rest.infer_stream(url, count_request(2))] == [[0], [1]]
        with GRPCClient(f"127.0.0.1:{server.grpc_port}") as client:
            assert [r.outputs[0].as_numpy().tolist() for r in client.infer_stream(count_request(3))] == [[0], [1], [2]]

        import tritonclient.grpc as tc

        results, done = [], threading.Event()

        def callback(result, error):
            results.append((result, error))
            if error is not None or result.get_response().parameters["triton_final_response"].bool_param:
                done.set()

        triton = tc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
        try:
            triton.start_stream(callback=callback)
            n = tc.InferInput("n", [1], "INT64")
            n.set_data_from_numpy(np.array([3], np.int64))
            triton.async_stream_infer("counter", [n], request_id="t1", enable_empty_final_response=True)
            assert done.wait(30)
            triton.stop_stream()
        finally:
            triton.close()
        assert all(error is None for _, error in results)
        assert [r.as_numpy("i").tolist() for r, _ in results[:-1]] == [[0], [1], [2]]
        assert results[-1][0].get_response().id == "t1" and results[-1][0].as_numpy("i") is None

        body = json.dumps({"inputs": [{"name": "n", "shape": [1], "datatype": "INT64", "data": [2]}]})
        for where in (["--url", url], ["--grpc", f"127.0.0.1:{server.grpc_port}"]):
            out = subprocess.run(
                [sys.executable, "-m", "modelport.cli", "infer", "counter", "--json", "-", "--stream", *where],
                input=body.encode(), capture_output=True, timeout=60, check=True,
            )
            lines = [json.loads(line) for line in out.stdout.decode().splitlines()]
            assert [doc["outputs"][0]["data"] for doc in lines] == [[0], [1]]


class BigResponses(SyncCounter):
    """V2 responses of 64 KiB each, as fast as it can."""

    def predict(self, payload, headers=None):
        from modelport import InferOutput, InferResponse

        try:
            for _ in range(100000):
                self.produced += 1
                out = InferOutput("blob", [1], "BYTES")
                out.set_data_from_numpy(np.array([b"x" * 65536], dtype=object), binary_data=False)
                yield InferResponse(None, self.name, [out])
        finally:
            self.closed.set()


async def test_grpc_slow_reader_holds_the_producer_back(serve):
    model = BigResponses("big")
    server, _ = await serve([model], enable_grpc=True)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        call = GRPCInferenceServiceStub(channel).ModelStreamInfer()
        await call.write(convert.request_to_proto(count_request(1, model="big")))
        await call.read()  # one answer, then the reader stops reading
        last, still = -1, 0
        while still < 20:  # wait until the producer stalls
            await asyncio.sleep(0.025)
            still = still + 1 if model.produced == last else 0
            last = model.produced
        # HTTP/2 flow-control windows and socket buffers hold a few MiB; the stream has 6.5 GB to give.
        assert model.produced < 500, f"{model.produced} responses of 64 KiB produced for a reader that stopped"
        call.cancel()
    await wait_for(model.closed.is_set, what="the generator to be closed after the call was cancelled")

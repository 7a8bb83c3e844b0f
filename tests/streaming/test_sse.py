"""Streaming over REST as server-sent events, on a real socket: V2 infer_stream, Triton's generate
extension, V1 :predict, errors before and after the first event, disconnects and slow readers."""

from __future__ import annotations

import asyncio
import json

import pytest

from modelport.wire.sse import SSEParser

from ..fixture_models import SumModel
from .conftest import wait_for
from .models import AsyncTokens, SyncCounter, WrappingPostprocess


def events(text: str) -> list[tuple[str | None, dict]]:
    parser = SSEParser()
    out = []
    for line in text.splitlines():
        out += [(name, json.loads(data)) for name, data in parser.feed(line)]
    return out + [(name, json.loads(data)) for name, data in parser.end()]


def n_input(n: int) -> dict:
    return {"inputs": [{"name": "n", "shape": [1], "datatype": "INT64", "data": [n]}]}


async def test_sync_generator_streams_v2_responses_from_the_hook_threads(serve):
    model = SyncCounter()
    server, client = await serve([model])
    response = await client.post("/v2/models/counter/infer_stream", json={**n_input(4), "id": "r1"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    got = events(response.text)
    assert [doc["outputs"][0]["data"] for _, doc in got] == [[0], [1], [2], [3]]
    assert all(doc["id"] == "r1" and doc["model_name"] == "counter" for _, doc in got)
    assert model.threads and all(name.startswith("modelport-hook") for name in model.threads)
    await wait_for(lambda: server.dataplane.in_flight().get("counter") == 0, what="the request to be released")


async def test_versioned_route_and_a_model_that_does_not_stream(serve):
    server, client = await serve([SumModel("sum")])
    body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}
    response = await client.post("/v2/models/sum/infer_stream", json=body)
    assert [doc["outputs"][0]["data"] for _, doc in events(response.text)] == [[3.0]]


async def test_generate_and_generate_stream(serve):
    server, client = await serve([AsyncTokens()])
    response = await client.post("/v2/models/tokens/generate_stream", json={"text_input": "hello big world"})
    assert [doc["text_output"] for _, doc in events(response.text)] == ["hello ", "big ", "world "]
    response = await client.post("/v2/models/tokens/generate", json={"text_input": "hello big world", "parameters": {"max_tokens": 5}, "id": "7"})
    assert response.status_code == 200
    assert response.json() == {"model_name": "tokens", "model_version": "", "id": "7", "text_output": "hello big world hello big "}
    bad = await client.post("/v2/models/tokens/generate", json={"text_input": {"nested": 1}})
    assert bad.status_code == 400 and "strings, numbers" in bad.json()["error"]
    missing = await client.post("/v2/models/nope/generate_stream", json={"text_input": "x"})
    assert missing.status_code == 404


async def test_v1_predict_streams_when_the_model_streams(serve):
    server, client = await serve([SyncCounter(), WrappingPostprocess()])
    response = await client.post("/v1/models/counter:predict", json={"instances": [3]})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert [doc for _, doc in events(response.text)] == [{"i": 0}, {"i": 1}, {"i": 2}]
    response = await client.post("/v1/models/wrapped:predict", json={"instances": []})
    assert [doc for _, doc in events(response.text)] == [{"part": 0}, {"part": 1}, {"part": 2}]


async def test_plain_infer_of_a_streaming_model_says_where_to_go(serve):
    server, client = await serve([SyncCounter()])
    response = await client.post("/v2/models/counter/infer", json=n_input(2))
    assert response.status_code == 400 and "infer_stream" in response.json()["error"]
    await wait_for(lambda: server.dataplane.in_flight().get("counter") == 0, what="the request to be released")


@pytest.mark.parametrize("model", [SyncCounter(fail_at=0), AsyncTokens(name="counter", fail_at=0)], ids=["sync", "async"])
async def test_failure_before_the_first_event_is_a_plain_error(serve, model):
    server, client = await serve([model])
    response = await client.post("/v2/models/counter/infer_stream", json=n_input(3))
    assert response.status_code == 500
    # As on every route: the client reads no exception text, the server log has it under this id.
    assert response.json()["error"].startswith("Model counter failed while serving the request; see the server log (request id ")


@pytest.mark.parametrize("model", [SyncCounter(fail_at=2), AsyncTokens(name="counter", fail_at=2)], ids=["sync", "async"])
async def test_failure_after_the_first_event_is_an_error_event(serve, model):
    server, client = await serve([model])
    response = await client.post("/v2/models/counter/infer_stream", json=n_input(5))
    assert response.status_code == 200
    got = events(response.text)
    assert len(got) == 3
    assert got[-1][0] == "error" and got[-1][1]["error"].startswith("Model counter failed while serving the request")
    # the server goes on serving
    assert (await client.get("/v2/health/ready")).status_code == 200
    await wait_for(lambda: server.dataplane.in_flight().get("counter") == 0, what="the request to be released")


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_disconnect_stops_the_generator_at_once(serve, kind):
    model = SyncCounter(delay=0.02) if kind == "sync" else AsyncTokens(name="counter", delay=0.02)
    server, client = await serve([model])
    body = n_input(100000) if kind == "sync" else {"text_input": "w", "parameters": {"max_tokens": 100000}}
    route = "/v2/models/counter/infer_stream" if kind == "sync" else "/v2/models/counter/generate_stream"
    read = 0
    async with client.stream("POST", route, json=body) as response:
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                read += 1
                if read == 3:
                    break
    # Leaving the block closed the connection: the generator must stop and run its finally.
    await wait_for(model.closed.is_set, what="the generator to be closed")
    produced = model.produced
    assert produced <= read + 3, f"{produced} items produced for {read} read"
    await wait_for(lambda: server.dataplane.in_flight().get("counter") == 0, what="the request to be released")
    await asyncio.sleep(0.1)  # nothing more is produced after close
    assert model.produced == produced


class BigChunks(SyncCounter):
    """Yields 64 KiB text chunks as fast as it can."""

    def predict(self, payload, headers=None):
        try:
            for _ in range(100000):
                self.produced += 1
                yield {"chunk": "x" * 65536}
        finally:
            self.closed.set()


async def test_a_slow_reader_holds_the_producer_back(serve):
    model = BigChunks("big")
    server, client = await serve([model])
    reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
    body = b'{"instances": [1]}'
    writer.write(b"POST /v1/models/big:predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                 b"content-length: %d\r\n\r\n%s" % (len(body), body))
    await writer.drain()
    await reader.read(1024)  # the status line and the first bytes, then the reader stops reading
    # Wait until the producer stalls: the count stops moving for a while.
    last, still = -1, 0
    while still < 20:
        await asyncio.sleep(0.025)
        still = still + 1 if model.produced == last else 0
        last = model.produced
    # Socket buffers hold a few MiB at most; without backpressure this would be all 100000 chunks (6.5 GB).
    assert model.produced < 500, f"{model.produced} chunks of 64 KiB produced for a reader that stopped"
    writer.close()
    await wait_for(model.closed.is_set, what="the generator to be closed after the reader left")

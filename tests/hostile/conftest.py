"""One real server (REST and gRPC on port 0) and the four ways to send it a tensor."""

from __future__ import annotations

import logging

import grpc
import grpc.aio
import httpx
import numpy as np
import orjson
import pytest

from modelport.wire.grpc import convert
from modelport.wire.grpc import grpc_predict_v2_pb2 as pb
from modelport.wire.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from ..fixture_models import EchoModel, FailingModel, SumModel
from ..helpers import make_server

DOORS = ["json", "binary", "grpc-typed", "grpc-raw"]


class Doors:
    """Sends one tensor (name, datatype, shape, JSON data, raw bytes) through any door."""

    def __init__(self, server):
        self.server = server
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=60)
        self.channel = grpc.aio.insecure_channel(
            f"127.0.0.1:{server.grpc_port}",
            options=[("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)],
        )
        self.stub = GRPCInferenceServiceStub(self.channel)

    async def send(self, door: str, model: str, tensor: dict, raw: bytes = b"") -> tuple[int | grpc.StatusCode, str]:
        """Status and error message (or "" on success) for one request."""
        if door == "json":
            r = await self.http.post(f"/v2/models/{model}/infer", content=orjson.dumps({"inputs": [tensor]}),
                                     headers={"content-type": "application/json"})
            return r.status_code, _error(r)
        if door == "binary":
            head = {k: v for k, v in tensor.items() if k != "data"}
            head["parameters"] = {"binary_data_size": len(raw)}
            header = orjson.dumps({"inputs": [head]})
            r = await self.http.post(f"/v2/models/{model}/infer", content=header + raw,
                                     headers={"inference-header-content-length": str(len(header)),
                                              "content-type": "application/octet-stream"})
            return r.status_code, _error(r)
        request = pb.ModelInferRequest(model_name=model)
        t = request.inputs.add(name=tensor["name"], datatype=tensor["datatype"])
        t.shape.extend(tensor["shape"])
        if door == "grpc-raw":
            request.raw_input_contents.append(raw)
        elif tensor.get("data"):
            field = convert.CONTENTS_FIELD[tensor["datatype"]]
            values = tensor["data"]
            getattr(t.contents, field).extend([v.encode() for v in values] if tensor["datatype"] == "BYTES" else values)
        try:
            await self.stub.ModelInfer(request, timeout=60)
        except grpc.aio.AioRpcError as exc:
            return exc.code(), exc.details() or ""
        return grpc.StatusCode.OK, ""

    async def still_serving(self) -> None:
        """A normal request through every door succeeds."""
        x = np.array([[1, 2]], np.float32)
        for door in DOORS:
            status, message = await self.send(door, "sum", {"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 2.0]},
                                               x.tobytes())
            assert status in (200, grpc.StatusCode.OK), (door, status, message)
        assert (await self.http.get("/v2/health/live")).status_code == 200

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.channel.close()


def _error(r: httpx.Response) -> str:
    if r.status_code == 200:
        return ""
    doc = r.json()
    assert set(doc) == {"error"}, doc
    return doc["error"]


@pytest.fixture
async def doors(caplog):
    server = make_server(enable_grpc=True)
    await server.start_async([SumModel("sum"), EchoModel(), FailingModel()])
    d = Doors(server)
    try:
        with caplog.at_level(logging.INFO, logger="modelport"):
            yield d
    finally:
        await d.aclose()
        await server.stop(grace_period=2)

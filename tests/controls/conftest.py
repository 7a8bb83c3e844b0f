from __future__ import annotations

import grpc
import grpc.aio
import numpy as np
import pytest

from modelport.wire.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from ..grpc_helpers import infer_request

X = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
V2_BODY = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1.0, 2.0, 3.0]}]}


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def grpc_infer(model: str = "sum", array: np.ndarray = X, **fields):
    return infer_request(model, ("x", "FP32", array), **fields)


@pytest.fixture
async def both(serve):
    """both(models, **settings) -> (server, http client, gRPC stub) with REST and gRPC on port 0."""
    channels = []

    async def _both(models=(), **kwargs):
        server, http = await serve(models, enable_grpc=True, **kwargs)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        channels.append(channel)
        return server, http, GRPCInferenceServiceStub(channel)

    yield _both
    for channel in channels:
        await channel.close()


async def grpc_fails(call, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    return info.value

"""What the door tests share: the keys, the model folder, and the server factory.

``start(**settings)`` is a fixture parameter so that another way of serving (``serve --ray``: replicas
built from ``ModelServer(settings=...).app``) can be added as one more param: it must hand back the
same ``Served`` (an httpx client and a gRPC channel on real sockets, port 0)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
import httpx
import pytest

from modelport import Model

from ..grpc_helpers import write_model
from ..helpers import make_server
from ..openai.models import ToyEncoder, ToyLM

ADMIN, INFER, SCOPED = "admin-key-0001", "infer-key-0002", "scoped-key-0003"
KEYS = [
    {"name": "ops", "key": ADMIN, "scopes": ["infer", "admin"]},
    {"name": "inf", "key": INFER, "scopes": ["infer"]},
    {"name": "otheronly", "key": SCOPED, "scopes": ["infer"], "models": ["other"]},  # a key for another model
]
CALLERS = {"none": None, "infer": INFER, "scoped": SCOPED, "admin": ADMIN}
V2_BODY = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1.0, 2.0, 3.0]}]}


def key_headers(key: str | None) -> dict[str, str]:
    return {"x-api-key": key} if key else {}


def key_metadata(key: str | None) -> tuple:
    return (("x-api-key", key),) if key else ()


@dataclass
class Served:
    http: httpx.AsyncClient
    channel: grpc.aio.Channel
    server: Any = None  # the ModelServer when it runs in this process (what a test may inspect)


class Scorer(Model):
    """Answers MLflow's /invocations (a model with an ``invocations`` method is an MLflow model there)."""

    def load(self) -> bool:
        self.ready = True
        return True

    def invocations(self, body: bytes, content_type: str) -> tuple[int, bytes, str]:
        return 200, b'{"predictions": [0]}', "application/json"


def model_folder(root) -> str:
    """sum, other and spare (for load/unload), and ver (version 1) for the versioned routes."""
    for name in ("sum", "other", "spare"):
        write_model(root, name)
    write_model(root, "ver", "1")
    return str(root)


async def _in_process(tmp_path, opened: list, **settings) -> Served:
    settings.setdefault("model_repository", model_folder(tmp_path / "models"))
    server = make_server(enable_grpc=True, **settings)
    await server.start_async([ToyLM("toy", length=3), ToyEncoder("encoder"), Scorer("scorer")])
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    opened.append((server, http, channel))
    return Served(http, channel, server)


@pytest.fixture(params=["process"])
async def start(request, tmp_path):
    """start(**settings) -> Served: a real server with the door tests' models, REST and gRPC on port 0."""
    opened: list = []
    count = iter(range(100))

    async def _start(**settings) -> Served:
        return await _in_process(tmp_path / str(next(count)), opened, **settings)

    yield _start
    for server, http, channel in opened:
        await channel.close()
        await http.aclose()
        await server.stop(grace_period=2)

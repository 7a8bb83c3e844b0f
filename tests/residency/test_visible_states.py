"""What everyone can see while a model loads on demand (issue 23: REGISTERED / LOADING / READY in the
repository index over REST and gRPC, and the console's memory column). The load is held open by the
test (an asyncio gate), so LOADING is observed without depending on timing."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path

import grpc.aio
import pytest

import modelport.ui
from modelport import InferOutput, InferResponse, Model
from modelport.wire.grpc import grpc_predict_v2_pb2 as pb
from modelport.wire.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from .conftest import index_of, v2_body, wait_for


class Gated(Model):
    """Registered, not loaded; its load waits for the test to open ``gate``; reports its own size."""

    def __init__(self, name: str, gate: asyncio.Event, size: int = 4096):
        super().__init__(name)
        self.gate, self.size, self.ready = gate, size, False

    async def load(self) -> bool:
        await self.gate.wait()
        self.ready = True
        return True

    def memory_bytes(self) -> int:
        return self.size

    async def predict(self, payload, headers=None):
        out = InferOutput("y", [1], "FP32")
        out.set_data_from_numpy(payload.inputs[0].as_numpy().astype("float32").sum(axis=-1), binary_data=False)
        return InferResponse(payload.id, self.name, [out])


async def _grpc_states(server) -> dict[str, str]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        reply = await GRPCInferenceServiceStub(channel).RepositoryIndex(pb.RepositoryIndexRequest())
    return {m.name: m.state for m in reply.models}


async def test_loading_is_shown_over_rest_and_grpc_while_a_load_runs(serve):
    gate = asyncio.Event()
    server, client = await serve([Gated("slow", gate), Gated("idle", asyncio.Event())], max_loaded_models=2,
                                 enable_grpc=True)
    assert await _grpc_states(server) == {"slow": "REGISTERED", "idle": "REGISTERED"}
    first = asyncio.ensure_future(client.post("/v2/models/slow/infer", json=v2_body()))
    await wait_for(lambda: index_of(server)["slow"]["state"] == "LOADING")
    rest = {m["name"]: m["state"] for m in (await client.post("/v2/repository/index")).json()}
    assert rest == {"slow": "LOADING", "idle": "REGISTERED"}
    assert await _grpc_states(server) == {"slow": "LOADING", "idle": "REGISTERED"}
    assert not first.done()  # the request waits for the load it started
    gate.set()
    answer = await first
    assert answer.status_code == 200, answer.text
    assert await _grpc_states(server) == {"slow": "READY", "idle": "REGISTERED"}
    item = index_of(server)["slow"]
    assert item["memory"] == {"bytes": 4096, "source": "model"} and item["loads"] == 1


NODE = shutil.which("node")
APP_JS = Path(modelport.ui.__file__).parent / "static" / "app.js"


def _console_memory(models: list[dict]) -> list:
    """The console's own ``memoryOf`` (app.js), run by node over the models the console API gave."""
    found = re.search(r"\n  function memoryOf\(m\) \{.*?\n  \}\n", APP_JS.read_text(), re.S)
    assert found, "app.js has no memoryOf(m)"
    script = found.group(0) + f"\nprocess.stdout.write(JSON.stringify({json.dumps(models)}.map(memoryOf)));"
    done = subprocess.run([NODE, "-e", script], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


@pytest.mark.skipif(NODE is None, reason="needs node to run the console's script")
async def test_the_console_list_shows_the_memory_the_index_measured(serve):
    gate = asyncio.Event()
    gate.set()
    server, client = await serve([Gated("hot", gate, size=5_000_000), Gated("cold", gate)], max_loaded_models=2,
                                 enable_ui=True)
    assert (await client.post("/v2/models/hot/infer", json=v2_body())).status_code == 200
    models = sorted((await client.get("/ui/api/models")).json()["models"], key=lambda m: m["name"])
    assert [(m["name"], m["state"]) for m in models] == [("cold", "REGISTERED"), ("hot", "READY")]
    assert _console_memory(models) == [None, 5_000_000]  # nothing measured yet for cold: an empty cell

"""Cold first-request latency with and without warmup (model-settings ``warmup``).

The model is a TorchScript MLP: its first calls run TorchScript's profiling passes, the cost warmup
moves before readiness. Each case runs in a fresh process (torch's process-wide caches start cold),
over a real socket, after one request to an echo model (so that the server's own first-request
costs are not counted); it prints the first request's latency and the median of the next 20.

    PYTHONPATH=. python bench/routing_warmup.py
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time

CASE = r'''
import asyncio, json, sys, time
import httpx, numpy as np, torch
from modelport import InferOutput, InferResponse, Model
from modelport.serving.server import ModelServer
from modelport.settings import ModelSettings

class Echo(Model):
    def load(self):
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        t = payload.inputs[0]
        out = InferOutput("y", list(t.shape), t.datatype)
        out.set_data_from_numpy(t.as_numpy(), binary_data=True)
        return InferResponse(payload.id, self.name, [out])

class Mlp(Model):
    def load(self):
        torch.manual_seed(0)
        net = torch.nn.Sequential(*[m for _ in range(6) for m in (torch.nn.Linear(256, 256), torch.nn.ReLU())])
        self.net = torch.jit.script(net.eval())
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        with torch.no_grad():
            y = self.net(torch.from_numpy(payload.inputs[0].as_numpy())).numpy()
        out = InferOutput("y", list(y.shape), "FP32")
        out.set_data_from_numpy(y, binary_data=True)
        return InferResponse(payload.id, self.name, [out])

async def main(case):
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [8, 256], "data": [0.5] * 2048}]}
    warmup = {"cold": None, "count": {"count": 3}, "samples": [body] * 3}[case]
    m = Mlp("mlp")
    m.settings = ModelSettings(name="mlp", inputs=[{"name": "x", "datatype": "FP32", "shape": [-1, 256]}], warmup=warmup)
    server = ModelServer(http_port=0, grpc_port=0, host="127.0.0.1", enable_grpc=False)
    await server.start_async([m, Echo("echo")])
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as c:
        # The server's own first-request costs (connection, decoders) paid on another model first.
        assert (await c.post("/v2/models/echo/infer", json=body)).status_code == 200
        times = []
        for _ in range(21):
            t = time.perf_counter()
            r = await c.post("/v2/models/mlp/infer", json=body)
            assert r.status_code == 200, r.text
            times.append(time.perf_counter() - t)
    await server.stop(grace_period=1)
    print(json.dumps(times))

asyncio.run(main(sys.argv[1]))
'''


def run(case: str) -> list[float]:
    out = subprocess.run([sys.executable, "-c", CASE, case], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    # cold: no warmup; count: 3 generated requests ([1, 256] zeros); samples: 3 requests shaped like
    # the real ones ([8, 256]) -- TorchScript specialises on shapes, so representative samples matter.
    for case in ("cold", "count", "samples"):
        firsts, rests = [], []
        for _ in range(3):
            times = run(case)
            firsts.append(times[0])
            rests.append(statistics.median(times[1:]))
        print(f"{case:8s}: first request {statistics.median(firsts) * 1e3:7.1f} ms (median of 3 processes), "
              f"then {statistics.median(rests) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()

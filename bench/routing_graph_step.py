"""Added latency of a local inference-graph step against calling the model directly, in process
through the data plane (no HTTP): N calls each way, interleaved, median and p90 per call.

    PYTHONPATH=. python bench/routing_graph_step.py [N]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

import numpy as np

from modelport import InferOutput, InferRequest, InferResponse, Model
from modelport.routing.graph import GraphModel
from modelport.serving.server import ModelServer
from modelport.types import InferInput


class Add(Model):
    def __init__(self, name):
        super().__init__(name)
        self.ready = True

    async def predict(self, payload, headers=None):
        x = payload.inputs[0].as_numpy()
        out = InferOutput("x", list(x.shape), "FP32")
        out.set_data_from_numpy(x + 1, binary_data=False)
        return InferResponse(payload.id, self.name, [out])


async def main(n: int) -> None:
    graph = GraphModel("g", {"nodes": {"root": {"routerType": "Sequence", "steps": [{"model": "add"}]}}})
    server = ModelServer(http_port=0, grpc_port=0, host="127.0.0.1", enable_grpc=False)
    await server.start_async([Add("add"), graph])
    dp = server.dataplane
    x = np.ones((1, 4), dtype=np.float32)

    def request(name):
        return InferRequest(name, [InferInput("x", [1, 4], "FP32", x)])

    direct, via = [], []
    for _ in range(200):  # warm up
        await dp.infer(request("add"), {})
        await dp.infer(request("g"), {})
    for _ in range(n):
        t = time.perf_counter()
        await dp.infer(request("add"), {})
        direct.append(time.perf_counter() - t)
        t = time.perf_counter()
        await dp.infer(request("g"), {})
        via.append(time.perf_counter() - t)
    await server.stop(grace_period=1)

    def us(values, q):
        return statistics.quantiles(values, n=10)[q] * 1e6 if q < 9 else 0

    for label, values in (("model directly", direct), ("one-step graph", via)):
        print(f"{label:16s} median {statistics.median(values) * 1e6:7.1f} us   p90 {us(values, 8):7.1f} us")
    print(f"added by the graph step: median {(statistics.median(via) - statistics.median(direct)) * 1e6:.1f} us over {n} calls")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000))

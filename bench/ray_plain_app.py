"""The baseline for bench/ray_bench.py: a plain one-deployment Ray Serve app, no FastAPI, no modelport.

One ``@serve.deployment`` whose ``__call__(request)`` (a Starlette request) loads the iris joblib, reads
the V2 JSON body, predicts and answers V2 JSON: what a Ray user would write by hand. Runs until SIGTERM.

    python bench/ray_plain_app.py MODEL.joblib PORT [--options JSON] [--num-cpus N] [--proxy-location L]
"""

from __future__ import annotations

import argparse
import json
import signal
import threading

import joblib
import numpy as np
import ray
from ray import serve
from starlette.requests import Request
from starlette.responses import Response


class Iris:
    def __init__(self, path: str):
        self.model = joblib.load(path)

    async def __call__(self, request: Request) -> Response:
        if request.method != "POST":
            return Response(b'{"ready": true}', media_type="application/json")
        body = json.loads(await request.body())
        item = body["inputs"][0]
        x = np.asarray(item["data"], dtype=np.float32).reshape(item["shape"])
        y = self.model.predict(x)
        answer = {"model_name": "iris", "outputs": [
            {"name": "predict", "datatype": "INT64", "shape": list(y.shape), "data": y.tolist()}]}
        return Response(json.dumps(answer).encode(), media_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("port", type=int)
    parser.add_argument("--options", type=json.loads, default={})
    parser.add_argument("--num-cpus", type=float)
    parser.add_argument("--proxy-location")
    args = parser.parse_args()
    stop = threading.Event()
    ray.init(include_dashboard=False, num_cpus=args.num_cpus)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    serve.start(http_options={"host": "127.0.0.1", "port": args.port}, proxy_location=args.proxy_location)
    options = {"ray_actor_options": {"num_cpus": 1}, **args.options}
    serve.run(serve.deployment(Iris, name="iris").options(**options).bind(args.model), name="plain", route_prefix="/",
              blocking=False, logging_config={"log_level": "WARNING", "enable_access_log": False})
    print("plain Ray Serve app ready", flush=True)
    stop.wait()
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()

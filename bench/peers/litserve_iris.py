"""LitServe peer: the iris joblib behind two ``LitAPI``s (V2 and V1 paths), as a LitServe user writes it.

Run inside bench/.venvs/litserve:

    python bench/peers/litserve_iris.py --port P [--tuned] [--batch] [--workers N] [--api-servers N]

Default: ``LitServer([v2, v1], healthcheck_path="/v2/health/ready")`` and ``run(port=P,
num_api_servers=1)`` (the API server count of a one-API server; see main()) with LitServe's
defaults otherwise (1 worker per device on CPU, ``fast_queue=False``, uvicorn's access log at
log_level ``info``). ``--tuned``: what LitServe's docs recommend for throughput on one CPU
device: ``fast_queue=True`` (ZeroMQ instead of multiprocessing queues between the API server and
the inference worker), ``log_level="warning"`` and ``access_log=False``. ``--batch`` adds dynamic
batching (``max_batch_size=64, batch_timeout=0.002``, like modelport-batch) to the tuned settings.
"""

import argparse

import litserve as ls
import numpy as np
from fastapi import HTTPException

import iris_codec


class IrisV2(ls.LitAPI):
    def setup(self, device):
        self.clf = iris_codec.load_model()

    def decode_request(self, request):
        try:  # LitServe answers 500 for any other exception; its docs say to raise HTTPException
            return iris_codec.v2_input(request)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise HTTPException(400, str(exc)) from None

    def predict(self, x):
        return self.clf.predict(x)

    def encode_response(self, y):
        return iris_codec.v2_output(y)


class IrisV1(IrisV2):
    def decode_request(self, request):
        try:
            return iris_codec.v1_input(request)
        except (ValueError, KeyError, TypeError) as exc:
            raise HTTPException(400, str(exc)) from None

    def encode_response(self, y):
        return iris_codec.v1_output(y)


class Batched:
    """Batching for either API: requests may carry several rows, so batch() keeps the arrays and
    predict() stacks them once and splits the answer back per request."""

    def batch(self, inputs):
        return inputs

    def predict(self, xs):
        y = self.clf.predict(np.vstack(xs))
        return np.split(y, np.cumsum([len(x) for x in xs])[:-1])

    def unbatch(self, ys):
        return ys


class BatchedV2(Batched, IrisV2):
    pass


class BatchedV1(Batched, IrisV1):
    pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tuned", action="store_true")
    ap.add_argument("--batch", action="store_true")
    ap.add_argument("--workers", type=int, default=1, help="workers_per_device (per API)")
    ap.add_argument("--api-servers", type=int, default=1, help="num_api_servers")
    args = ap.parse_args()
    kw = {"max_batch_size": 64, "batch_timeout": 0.002} if args.batch else {}
    v2 = (BatchedV2 if args.batch else IrisV2)(api_path="/v2/models/iris/infer", **kw)
    v1 = (BatchedV1 if args.batch else IrisV1)(api_path="/v1/models/iris:predict", **kw)
    tuned = args.tuned or args.batch
    server = ls.LitServer([v2, v1], healthcheck_path="/v2/health/ready", workers_per_device=args.workers,
                          fast_queue=tuned)
    run = {"log_level": "warning", "access_log": False} if tuned else {}
    # Two LitAPIs would get two inference workers and, by default, two API server processes; one
    # API server is what a one-API user gets (each case drives one protocol, so one worker is busy).
    server.run(host="127.0.0.1", port=args.port, num_api_servers=args.api_servers, generate_client_file=False, **run)


if __name__ == "__main__":
    main()

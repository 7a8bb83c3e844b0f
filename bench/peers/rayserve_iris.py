"""Plain Ray Serve peer: one ``@serve.deployment`` behind Ray Serve's HTTP proxy, started by ``serve.run``.

Run inside bench/.venvs/rayserve:

    python bench/peers/rayserve_iris.py --port P [--tuned] [--replicas N]

It starts a private local Ray instance (``address="local"``: never joins another engineer's
cluster; 2 CPUs, no dashboard, a short temp dir of its own under /tmp/rsbench-<pid>), the proxy on 127.0.0.1:P, and one
deployment whose ``__call__`` answers ``POST /v2/models/iris/infer``, ``POST /v1/models/iris:predict``
and ``GET /v2/health/ready`` (the proxy routes every path under ``/`` to it, so ready means the
whole chain answers). SIGTERM shuts the local Ray instance (and Serve with it) down and removes its temp dir (the
harness then ends what is left of the process group; a temp dir left behind is removed by the next run).

Default: the deployment's defaults (``num_replicas=1``, ``max_ongoing_requests=5``, access log
on, log level INFO). ``--tuned`` follows Ray
Serve's performance guide for a cheap CPU model on one node: ``max_ongoing_requests=64`` (so 64
connections are not queued in the proxy 5 at a time), ``num_replicas=1`` fixed, the access log off
and log level WARNING (``logging_config``), and ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1`` set by the
harness in the environment.
"""

import argparse
import glob
import json
import os
import shutil
import signal
import threading

import ray
from ray import serve
from starlette.requests import Request
from starlette.responses import Response

import iris_codec

V2_PATH = "/v2/models/iris/infer"
V1_PATH = "/v1/models/iris:predict"
READY_PATH = "/v2/health/ready"


class Iris:
    def __init__(self) -> None:
        self.clf = iris_codec.load_model()

    async def __call__(self, request: Request) -> Response:
        path = request.url.path
        if request.method == "GET" and path == READY_PATH:
            return Response(b"{}", media_type="application/json")
        try:
            body = json.loads(await request.body())
            if path == V2_PATH:
                out = iris_codec.v2_output(self.clf.predict(iris_codec.v2_input(body)), body.get("id"))
            elif path == V1_PATH:
                out = iris_codec.v1_output(self.clf.predict(iris_codec.v1_input(body)))
            else:
                return Response(b'{"error":"not found"}', status_code=404, media_type="application/json")
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            return Response(json.dumps({"error": str(exc)}), status_code=400, media_type="application/json")
        return Response(json.dumps(out, separators=(",", ":")), media_type="application/json")


TEMP_PREFIX = "/tmp/rsbench-"  # short: Ray's unix socket paths must stay under ~107 characters


def private_temp_dir() -> str:
    """A temp dir for this Ray instance, named after this pid; removes those of dead earlier runs
    (Ray's core installs its own SIGTERM handler, so the process may die before its cleanup runs)."""
    for old in glob.glob(TEMP_PREFIX + "*"):
        try:
            os.kill(int(old[len(TEMP_PREFIX):]), 0)
        except ProcessLookupError:
            shutil.rmtree(old, ignore_errors=True)
        except (ValueError, PermissionError):
            pass
    path = f"{TEMP_PREFIX}{os.getpid()}"
    os.makedirs(path, exist_ok=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tuned", action="store_true")
    ap.add_argument("--replicas", type=int, default=1, help="num_replicas")
    args = ap.parse_args()
    temp_dir = private_temp_dir()
    ray.init(address="local", num_cpus=2, include_dashboard=False, _temp_dir=temp_dir, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    options = {"num_replicas": args.replicas}
    if args.tuned:
        options.update(max_ongoing_requests=64, logging_config={"enable_access_log": False, "log_level": "WARNING"})
    serve.run(serve.deployment(Iris, **options).bind(), name="iris", route_prefix="/")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    try:  # this driver started the local cluster: ray.shutdown() stops Serve's actors with it
        ray.shutdown()
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

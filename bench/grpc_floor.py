"""The gRPC floor: the thinnest grpc.aio server that answers ModelInfer.

    python bench/grpc_floor.py PORT                       # a canned response: no decoding, no model
    python bench/grpc_floor.py PORT --predict --http P2   # decode FP32 -> numpy -> predict -> encode
    python bench/grpc_floor.py PORT --predict --sync      # the same on grpc's sync server (a thread pool)
    python bench/grpc_floor.py PORT --generic             # generic handlers only, no registered methods
    python bench/grpc_floor.py PORT --grpclib             # grpclib (asyncio + h2, pure Python) instead of grpcio

Canned, whatever a server spends per call beyond this is its own work; the rest is grpc.aio itself.
With ``--predict`` it does for gRPC what bench/floor_app.py does for REST (the same scikit-learn
``predict`` on bench/.work/iris.joblib, or $BENCH_IRIS_JOBLIB), so a server's distance from it is its
overhead on the same model. ``--sync`` serves the same handler from ``grpc.server`` (sync handlers
on a thread pool, no asyncio): the floor of the "sync server" alternative (issue 24). ``--generic`` registers the service as generic
handlers only, as modelport does: grpc.aio waits on one pending future per *registered* method on every
call, which the generated registration pays for the service's 11 methods. ``--http`` answers 200 to any HTTP request on that port, for the bench
harness's readiness check. BENCH_FLOOR_STUB=1 makes ``--predict`` answer a constant instead of
calling scikit-learn (decode and encode still run), beside bench/models/iris-stub. ``--grpclib`` serves the same handler from grpclib, the one other HTTP/2
gRPC stack for asyncio (issue 24's "another HTTP/2 stack"; ``pip install grpclib``, not a dependency of
modelport or of the bench venvs). Uses modelport's generated Open Inference Protocol stubs only.
"""

import argparse
import asyncio
import os
from pathlib import Path

import grpc
import numpy as np

from modelport.wire.grpc import grpc_predict_v2_pb2 as pb
from modelport.wire.grpc import grpc_predict_v2_pb2_grpc as pbg

CANNED = pb.ModelInferResponse(model_name="iris", id="")
_out = CANNED.outputs.add(name="output-0", datatype="INT64", shape=[1])
_out.contents.int64_contents.append(0)


class Floor(pbg.GRPCInferenceServiceServicer):
    def __init__(self, clf=None):
        self.clf = clf

    async def ModelInfer(self, request, context):
        return self.infer(request)

    def infer(self, request):
        if self.clf is None:
            return CANNED
        tensor = request.inputs[0]
        if request.raw_input_contents:
            x = np.frombuffer(request.raw_input_contents[0], dtype=np.float32)
        else:
            x = np.asarray(tensor.contents.fp32_contents, dtype=np.float32)
        y = self.clf.predict(x.reshape(tuple(tensor.shape)))
        response = pb.ModelInferResponse(model_name=request.model_name, id=request.id)
        out = response.outputs.add(name="output-0", datatype="INT64", shape=list(y.shape))
        out.contents.int64_contents.extend(y.tolist())
        return response

    async def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=True)


class SyncFloor(pbg.GRPCInferenceServiceServicer):
    def __init__(self, floor: Floor):
        self.floor = floor

    def ModelInfer(self, request, context):
        return self.floor.infer(request)

    def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=True)


class _Stub:
    """A constant answer in place of scikit-learn (BENCH_FLOOR_STUB=1): the floor's cost around a model."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.zeros(len(x), dtype=np.int64)


def load_clf(predict: bool):
    if not predict:
        return None
    if os.environ.get("BENCH_FLOOR_STUB"):
        return _Stub()
    import joblib

    return joblib.load(os.environ.get("BENCH_IRIS_JOBLIB", str(Path(__file__).parent / ".work" / "iris.joblib")))


def main_sync(args: argparse.Namespace) -> None:
    from concurrent.futures import ThreadPoolExecutor

    server = grpc.server(ThreadPoolExecutor(max_workers=args.threads))
    pbg.add_GRPCInferenceServiceServicer_to_server(SyncFloor(Floor(load_clf(args.predict))), server)
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    if args.http:
        import threading

        threading.Thread(target=lambda: asyncio.run(_serve_http(args.http)), daemon=True).start()
    server.wait_for_termination()


async def _serve_http(port: int) -> None:
    server = await asyncio.start_server(_http_ok, "127.0.0.1", port)
    await server.serve_forever()


async def _http_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}")
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


class _GenericOnly:
    """Hands the generated registration's generic handler to the server, and drops its registered methods."""

    def __init__(self, server):
        self.server = server

    def add_generic_rpc_handlers(self, handlers):
        self.server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service, handlers):
        pass


class GrpclibFloor:
    """The same handler as grpclib's service: its ``__mapping__`` is what grpclib's generated code makes."""

    def __init__(self, floor: Floor):
        self.floor = floor

    async def infer(self, stream) -> None:
        await stream.send_message(self.floor.infer(await stream.recv_message()))

    async def ready(self, stream) -> None:
        await stream.recv_message()
        await stream.send_message(pb.ServerReadyResponse(ready=True))

    def __mapping__(self) -> dict:
        from grpclib.const import Cardinality, Handler

        service = "/inference.GRPCInferenceService/"
        return {
            service + "ModelInfer": Handler(self.infer, Cardinality.UNARY_UNARY, pb.ModelInferRequest, pb.ModelInferResponse),
            service + "ServerReady": Handler(self.ready, Cardinality.UNARY_UNARY, pb.ServerReadyRequest, pb.ServerReadyResponse),
        }


async def main_grpclib(args: argparse.Namespace) -> None:
    from grpclib.server import Server

    server = Server([GrpclibFloor(Floor(load_clf(args.predict)))])
    await server.start("127.0.0.1", args.port)
    if args.http:
        await asyncio.start_server(_http_ok, "127.0.0.1", args.http)
    await server.wait_closed()


async def main(args: argparse.Namespace) -> None:
    if args.grpclib:
        return await main_grpclib(args)
    server = grpc.aio.server()
    pbg.add_GRPCInferenceServiceServicer_to_server(Floor(load_clf(args.predict)), _GenericOnly(server) if args.generic else server)
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    await server.start()
    if args.http:
        await asyncio.start_server(_http_ok, "127.0.0.1", args.http)
    await server.wait_for_termination()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("port", type=int)
    ap.add_argument("--predict", action="store_true", help="run the iris predict instead of a canned answer")
    ap.add_argument("--http", type=int, help="answer 200 to HTTP requests on this port (readiness)")
    ap.add_argument("--sync", action="store_true", help="grpc's sync server (handlers on a thread pool) instead of grpc.aio")
    ap.add_argument("--threads", type=int, default=8, help="--sync: the thread pool's size")
    ap.add_argument("--generic", action="store_true", help="generic handlers only (no registered methods), as modelport")
    ap.add_argument("--grpclib", action="store_true", help="grpclib's server (pure-Python HTTP/2) instead of grpcio's")
    args = ap.parse_args()
    if args.sync:
        main_sync(args)
        raise SystemExit(0)
    try:
        import uvloop  # modelport serves gRPC on uvloop too

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(main(args))

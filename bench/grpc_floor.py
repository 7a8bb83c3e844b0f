"""The gRPC floor: a grpc.aio server whose ModelInfer answers a canned response (no decoding, no model).

Whatever a server spends per call beyond this is its own work; the rest is grpc.aio itself.
Uses modelport's generated Open Inference Protocol stubs (only the protos, none of modelport's code).

    python bench/grpc_floor.py PORT
"""

import asyncio
import sys

import grpc

from modelport.wire.grpc import grpc_predict_v2_pb2 as pb
from modelport.wire.grpc import grpc_predict_v2_pb2_grpc as pbg

CANNED = pb.ModelInferResponse(model_name="iris", id="")
_out = CANNED.outputs.add(name="output-0", datatype="INT64", shape=[1])
_out.contents.int64_contents.append(0)


class Floor(pbg.GRPCInferenceServiceServicer):
    async def ModelInfer(self, request, context):
        return CANNED

    async def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=True)


async def main(port: int) -> None:
    server = grpc.aio.server()
    pbg.add_GRPCInferenceServiceServicer_to_server(Floor(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    try:
        import uvloop  # modelport serves gRPC on uvloop too

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(main(int(sys.argv[1])))

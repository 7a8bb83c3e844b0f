"""The gRPC door's one handler wrapper (transports/grpc/calls.py) on a real grpc.aio server (port 0):
it wraps what generated registration code hands over, whichever way that code registers, and it
refuses, at start-up, a handler it could not guard."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from modelport.errors import InvalidInput, StartupError
from modelport.transports.grpc.calls import CallGuard

HEALTH = "grpc.health.v1.Health"


class BrokenHealth(health.aio.HealthServicer):
    async def Check(self, request, context):  # noqa: N802 - grpc's name
        raise InvalidInput("no such service here")


def generic_only(servicer, server):
    """What older generated code does: one generic handler, no registered methods."""
    handlers = {
        "Check": grpc.unary_unary_rpc_method_handler(
            servicer.Check,
            request_deserializer=health_pb2.HealthCheckRequest.FromString,
            response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
        )
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(HEALTH, handlers),))


async def _check(add_to_server) -> grpc.aio.AioRpcError:
    guard = CallGuard()
    server = grpc.aio.server()
    guard.add_service(server, add_to_server, BrokenHealth())
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="x"))
            return info.value
    finally:
        await server.stop(0)


@pytest.mark.parametrize("add_to_server", [health_pb2_grpc.add_HealthServicer_to_server, generic_only],
                         ids=["registered-methods", "generic-only"])
async def test_handlers_from_generated_code_are_wrapped_either_way(add_to_server):
    # The wrapper's error table answers: INVALID_ARGUMENT with the error's text, not grpc's UNKNOWN.
    error = await _check(add_to_server)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "no such service here"


async def test_an_undeclared_method_stops_the_server_from_starting():
    handler = grpc.unary_unary_rpc_method_handler(BrokenHealth().Check)
    with pytest.raises(StartupError, match=r"without a declared door \(modelport/doors.py\): /grpc.health.v1.Health/Probe$"):
        CallGuard().register(grpc.aio.server(), HEALTH, {"Probe": handler})


async def test_a_sync_handler_stops_the_server_from_starting():
    def check(request, context):
        return health_pb2.HealthCheckResponse()

    with pytest.raises(StartupError, match="not async"):
        CallGuard().register(grpc.aio.server(), HEALTH, {"Check": grpc.unary_unary_rpc_method_handler(check)})

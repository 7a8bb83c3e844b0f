"""Builds, binds and starts the gRPC server on the running asyncio loop (grpc.aio)."""

from __future__ import annotations

from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ...dataplane.plane import DataPlane
from ...doors import GRPC_BY_METHOD
from ...errors import StartupError
from ...wire.grpc import grpc_predict_v2_pb2 as pb
from ...wire.grpc import model_repository_pb2 as mr
from ...wire.grpc.rawcodec import parse_infer_request, serialize_infer_response
from .calls import CallGuard
from .drain import drain_and_stop
from ...wire.grpc.model_repository_pb2_grpc import add_ModelRepositoryServiceServicer_to_server
from .servicer import InferenceServicer, ModelRepositoryServicer

SERVICE_NAME = "inference.GRPCInferenceService"
# Every service this server registers; each of their methods must be a declared door (modelport/doors.py).
SERVICES = (
    pb.DESCRIPTOR.services_by_name["GRPCInferenceService"],
    mr.DESCRIPTOR.services_by_name["ModelRepositoryService"],
    health_pb2.DESCRIPTOR.services_by_name["Health"],
)


def served_methods() -> list[str]:
    """The full names of the methods the server registers ("/package.Service/Method")."""
    return [f"/{service.full_name}/{method.name}" for service in SERVICES for method in service.methods]


class _HealthServicer(health.aio.HealthServicer):
    """grpc_health's asyncio servicer, with List (grpcio-health-checking 1.85 declares it in the service
    but its asyncio servicer leaves it unimplemented): every service's status, as Check answers each."""

    async def List(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return health_pb2.HealthListResponse(statuses={
            name: health_pb2.HealthCheckResponse(status=status) for name, status in self._server_status.items()})


class GrpcServer:
    """What the composition root holds: the bound port and a graceful stop."""

    def __init__(
        self, server: grpc.aio.Server, port: int, health_servicer: health.aio.HealthServicer, guard: CallGuard
    ):
        self.server = server
        self.port = port
        self._health = health_servicer
        self._guard = guard

    async def not_serving(self) -> None:
        """Health checkers see NOT_SERVING (calls are still served); readiness is the data plane's flag."""
        await self._health.enter_graceful_shutdown()

    async def stop(self, grace: float) -> None:
        """Refuse new RPCs (UNAVAILABLE), give in-flight ones ``grace`` seconds to finish, then stop."""
        await self.not_serving()
        await drain_and_stop(self.server, self._guard, grace)


async def start_grpc_server(
    dataplane: DataPlane, host: str, port: int, max_message_size: int, reuse_port: bool = False,
    checks: Any = None, edge: Any = None,
) -> GrpcServer:
    """``checks``: the controls' per-method checks (controls.grpc.GrpcControls), or None."""
    options = [
        ("grpc.max_send_message_length", max_message_size),
        ("grpc.max_receive_message_length", max_message_size),
        # Off by default: otherwise Linux lets a second server bind a port already in use and the
        # clash goes unseen. On only for front-end worker processes, which share the port on purpose.
        ("grpc.so_reuseport", 1 if reuse_port else 0),
    ]
    undeclared = [m for m in served_methods() if m not in GRPC_BY_METHOD]
    if undeclared:  # deny by default: a method without a declared kind is a bug, caught before serving
        raise StartupError(f"gRPC methods without a declared door (modelport/doors.py): {', '.join(undeclared)}")
    # No interceptors: every handler is wrapped once, here, with the drain, the errors and the checks.
    guard = CallGuard(checks)
    server = grpc.aio.server(options=options)
    # The services in SERVICES, in that order.
    add_inference_service(InferenceServicer(dataplane, edge), server, guard)
    guard.add_service(server, add_ModelRepositoryServiceServicer_to_server, ModelRepositoryServicer(dataplane))  # MLServer's
    health_servicer = _HealthServicer()
    guard.add_service(server, health_pb2_grpc.add_HealthServicer_to_server, health_servicer)
    await health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        bound, reason = 0, str(exc)
    else:
        reason = "address in use or unavailable"
    if not bound:

        raise StartupError(f"Cannot listen for gRPC on {host}:{port}: {reason}")
    await server.start()
    return GrpcServer(server, bound, health_servicer, guard)


def add_inference_service(servicer: Any, server: grpc.aio.Server, guard: CallGuard) -> None:
    """The generated ``add_GRPCInferenceServiceServicer_to_server``, except that ModelInfer's raw
    tensors travel as buffers (wire/grpc/rawcodec.py): its request and response each skip protobuf's
    copies of the tensor bytes. A method of the service is served by the servicer's method of the
    same name (a new RPC: one method on the servicer and its door in modelport/doors.py)."""
    handlers = {}
    for method in pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods:
        deserialize = getattr(pb, method.input_type.name).FromString
        serialize = getattr(pb, method.output_type.name).SerializeToString
        if method.name == "ModelInfer":
            deserialize, serialize = parse_infer_request, serialize_infer_response
        kind = "stream_stream" if method.client_streaming else "unary_unary"
        if method.client_streaming != method.server_streaming:  # pragma: no cover - the service has none
            kind = "stream_unary" if method.client_streaming else "unary_stream"
        handlers[method.name] = getattr(grpc, f"{kind}_rpc_method_handler")(
            getattr(servicer, method.name), request_deserializer=deserialize, response_serializer=serialize
        )
    servicer.raw_buffers = True
    guard.register(server, SERVICE_NAME, handlers)


__all__ = ["GrpcServer", "SERVICES", "add_inference_service", "served_methods", "start_grpc_server"]

"""The gRPC door: the Open Inference Protocol service and grpc.health.v1 on one grpc.aio server."""

from .server import GrpcServer, start_grpc_server

__all__ = ["GrpcServer", "start_grpc_server"]

"""``kserve.protocol.grpc.grpc_predict_v2_pb2_grpc`` under modelport (the same service stubs)."""

from ...wire.grpc.grpc_predict_v2_pb2_grpc import *  # noqa: F401,F403

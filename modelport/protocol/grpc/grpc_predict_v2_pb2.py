"""``kserve.protocol.grpc.grpc_predict_v2_pb2`` under modelport (the same protobuf messages)."""

from ...wire.grpc.grpc_predict_v2_pb2 import *  # noqa: F401,F403

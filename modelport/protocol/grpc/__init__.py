"""``kserve.protocol.grpc`` under modelport: the Open Inference Protocol's generated gRPC modules."""

"""The Open Inference Protocol over gRPC: the .proto, its generated stubs, and the converters
between protobuf messages and modelport's types (see :mod:`.convert`). Regenerate the stubs with
``generate.sh``; the runtime needs grpcio and protobuf, not grpcio-tools."""

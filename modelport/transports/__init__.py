"""The doors into the data plane: REST and gRPC. Thin; they never import each other."""

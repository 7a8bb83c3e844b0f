"""The server process: the composition root (``server.ModelServer``), front-end worker processes
and their synchronisation, and the allocator tuning applied at start."""

"""Wire formats shared by the server and the clients. Pure functions, no I/O."""

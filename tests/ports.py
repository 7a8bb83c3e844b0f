"""Ports for tests: an address where nothing answers, and a number for a server that cannot take port 0.

A number found by binding port 0 and closing is in the OS's ephemeral range, where any client socket
of this suite (or a server on port 0) may take it before the server it was meant for binds it: a server
then fails with "address in use" once in a while. ``unused_port`` picks below that range instead."""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def refused_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port the OS chose, held bound but never listening while the block runs: every connection to it
    is refused, and no other process can take it meanwhile."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        yield sock.getsockname()[1]


_GIVEN: set[int] = set()  # numbers handed out in this run: never twice


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def unused_port(host: str = "127.0.0.1") -> int:
    """A port number for a server in another process that must be told its port (KServe scripts, Ray's
    proxy, an image, a predictor started later): free now, below the ephemeral range so no client
    socket or port-0 server takes it first, and never handed out twice in a run."""
    low = _ephemeral_low()
    while True:
        port = random.randrange(max(1024, low - 12000), low)
        if port in _GIVEN:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:  # taken
                continue
        _GIVEN.add(port)
        return port

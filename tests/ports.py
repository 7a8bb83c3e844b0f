"""Ports for tests that need an address where nothing answers (never bind, close and reuse a number)."""

from __future__ import annotations

import contextlib
import socket
from typing import Iterator


@contextlib.contextmanager
def refused_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port the OS chose, held bound but never listening while the block runs: every connection to it
    is refused, and no other process can take it meanwhile."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        yield sock.getsockname()[1]

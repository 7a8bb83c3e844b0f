"""The HTTP listener: takes in every connection the kernel has queued each time the socket is ready.

uvloop's own listener (libuv 1.45 and later) accepts one connection per loop iteration. When an
iteration is slow (work done on the loop, many requests ready at once) a burst of new connections is
taken in one iteration at a time: 64 clients connecting together to a uvloop server answering on the
loop waited up to 0.6 s for their first answers, behind requests that arrived after theirs (stdlib
asyncio's listener, which takes in the whole queue: under 60 ms). Here each readiness event accepts
up to ``PER_EVENT`` connections and hands each to the loop as an accepted socket; the event comes
again while more are queued. tests/hostile/test_accept_burst.py counts the iterations (64 before, 1).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Callable

logger = logging.getLogger("modelport")

PER_EVENT = 128  # enough for a burst; a flood still lets the loop serve between rounds
ON_CLOSE = 4096  # the most a close takes in
RETRY_AFTER_S = 1.0  # out of file descriptors: stop accepting for a while (as asyncio's server does)


class Listener:
    """What uvicorn keeps in ``Server.servers``: ``close()`` stops accepting, ``wait_closed()``
    returns once every connection taken in has its protocol."""

    def __init__(self, sock: socket.socket, protocol_factory: Callable[[], asyncio.Protocol]):
        self.sock = sock
        self.sockets = [sock]
        self._factory = protocol_factory
        self._loop = asyncio.get_running_loop()
        self._handshakes: set[asyncio.Task] = set()
        self._serving = False
        self._closed = False
        self._resume: asyncio.TimerHandle | None = None
        sock.setblocking(False)
        self._start()

    def _start(self) -> None:
        self._resume = None
        if not self._serving:
            self._serving = True
            self._loop.add_reader(self.sock.fileno(), self._accept)

    def _pause(self) -> None:
        if self._serving:
            self._serving = False
            self._loop.remove_reader(self.sock.fileno())

    def _accept(self, most: int = PER_EVENT) -> None:
        for _ in range(most):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:  # the client gave up while queued
                continue
            except OSError as exc:
                # Out of descriptors (or anything else the socket says): a level-triggered reader would
                # spin on it; stop, and try again a little later.
                logger.error("Cannot accept connections (%s); retrying in %g s", exc.strerror or exc, RETRY_AFTER_S)
                self._pause()
                self._resume = self._loop.call_later(RETRY_AFTER_S, self._start)
                return
            task = self._loop.create_task(self._adopt(conn))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _adopt(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, conn)
        except OSError:  # reset before its transport was made
            conn.close()
        except Exception:  # noqa: BLE001 - one connection's failure must not stop the listener
            logger.exception("Cannot set up an accepted connection")
            conn.close()

    def close(self) -> None:
        """Stop accepting. Connections the kernel has queued are taken in first, in the same step: closing
        the socket would reset them under requests their clients have already written (they are served
        once, with Connection: close, as every connection in a drain)."""
        if self._closed:
            return
        self._closed = True
        self._accept(ON_CLOSE)
        self._pause()
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None

    async def wait_closed(self) -> None:
        if self._handshakes:
            await asyncio.gather(*self._handshakes, return_exceptions=True)

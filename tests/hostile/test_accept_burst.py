"""A burst of new connections on a busy server (modelport/serving/listener.py).

uvloop's own listener takes in one queued connection per loop iteration; on a busy server each
iteration serves every active connection first, so the last of 64 clients that connect together
waited 0.3-0.6 s for its first answer. These tests make every iteration slow on purpose (a callback
that takes 5 ms and schedules itself again) and count the iterations the server needs to take in a
burst, which is exact where a latency would be a guess.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from tests.fixture_models import SumModel
from tests.helpers import make_server

uvloop = pytest.importorskip("uvloop")

BURST = 64


class _Iterations:
    """Counts loop iterations, each made at least ``burn_s`` long, and calls ``watch`` in each."""


    def __init__(self, loop: asyncio.AbstractEventLoop, watch, burn_s: float = 0.005):
        self.loop, self.watch, self.burn_s = loop, watch, burn_s
        self.count = 0
        self.seen: list[tuple[int, int]] = []  # (iteration, value of watch())
        self.running = True
        loop.call_soon_threadsafe(self._tick)

    def _tick(self) -> None:
        if not self.running:
            return
        self.count += 1
        self.seen.append((self.count, self.watch()))
        time.sleep(self.burn_s)  # a slow iteration that leaves the GIL to the test's clients
        self.loop.call_soon(self._tick)

    def iterations_to_reach(self, base: int, target: int) -> int:
        """Iterations from the first one that saw more than ``base`` to the first that saw ``target``."""
        first = next(i for i, v in self.seen if v > base)
        last = next(i for i, v in self.seen if v >= target)
        return last - first + 1


def _wait(predicate, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_busy_server_takes_in_a_burst_of_connections_at_once():
    loop = uvloop.new_event_loop()
    server = make_server()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start_async([SumModel("sum")]))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)
    clients: list[socket.socket] = []
    try:
        connections = server._http.server_state.connections
        ticks = _Iterations(loop, lambda: len(connections))
        _wait(lambda: ticks.count > 3)
        # Hold the loop while 64 clients connect (the kernel completes each handshake without the
        # server), so all 64 wait in the accept queue as a burst does, then let it run again.
        connected, held = threading.Event(), threading.Event()
        loop.call_soon_threadsafe(lambda: (held.set(), connected.wait(30)))
        assert held.wait(30)
        clients = [socket.create_connection(("127.0.0.1", server.http_port)) for _ in range(BURST)]
        connected.set()
        _wait(lambda: ticks.seen[-1][1] >= BURST)
        ticks.running = False
        # One readiness event takes in the whole queue (two if it became readable mid-burst).
        assert ticks.iterations_to_reach(0, BURST) <= 3
        # And every one of them is served.
        body = b'{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}'
        request = (b"POST /v2/models/sum/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        for client in clients:
            client.sendall(request)
        for client in clients:
            client.settimeout(20)
            assert client.recv(65536).startswith(b"HTTP/1.1 200")
    finally:
        for client in clients:
            client.close()
        asyncio.run_coroutine_threadsafe(server.stop(grace_period=2), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


# Out of file descriptors: accept() fails with EMFILE while connections stay queued, so a
# level-triggered reader would be called again at once, forever. The listener stops for a while and
# takes the queue in once descriptors are free again.
_EMFILE_SCRIPT = textwrap.dedent("""
    import asyncio, logging, os, socket, sys, time
    import uvloop
    from modelport.serving import listener
    listener.RETRY_AFTER_S = 0.3
    logging.basicConfig(level=logging.ERROR, stream=sys.stdout, format="%(message)s")

    def hog_descriptors():
        taken = []
        while True:
            try:
                taken.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                return taken

    async def main():
        made = []
        class Protocol(asyncio.Protocol):
            def connection_made(self, transport):
                made.append(transport)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        server = listener.Listener(sock, Protocol)
        hog = hog_descriptors()
        for fd in hog[-8:]:  # just enough for the clients' own sockets
            os.close(fd)
        del hog[-8:]
        clients = [socket.create_connection(sock.getsockname()) for _ in range(8)]
        await asyncio.sleep(1.0)
        print("WHILE_FULL", len(made))
        for fd in hog[:32]:
            os.close(fd)
        deadline = time.monotonic() + 5
        while len(made) < 8 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        print("AFTER", len(made))
        server.close()
        await server.wait_closed()
    uvloop.run(main())
""")



def test_out_of_descriptors_pauses_accepting_instead_of_spinning(tmp_path):
    result = subprocess.run([sys.executable, "-c", _EMFILE_SCRIPT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "WHILE_FULL 0" in lines, result.stdout
    assert "AFTER 8" in lines, result.stdout  # taken in after a retry, nothing lost
    # Said once per pause, not once per loop iteration.
    errors = [ln for ln in result.stdout.splitlines() if ln.startswith("Cannot accept connections")]
    assert 1 <= len(errors) <= 5, result.stdout


async def test_a_connection_that_cannot_be_set_up_does_not_stop_the_listener(caplog):
    from modelport.serving.listener import Listener

    made = []

    class Protocol(asyncio.Protocol):
        def connection_made(self, transport):
            made.append(transport)

    calls = 0

    def factory():
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("first protocol fails")
        return Protocol()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    listener = Listener(sock, factory)
    clients = []
    try:
        for _ in range(3):
            clients.append(socket.create_connection(sock.getsockname()))
            for _ in range(200):
                await asyncio.sleep(0.01)
                if calls == len(clients):
                    break
        for _ in range(200):
            if len(made) == 2:
                break
            await asyncio.sleep(0.01)
        assert len(made) == 2
        assert "Cannot set up an accepted connection" in caplog.text
        clients[0].settimeout(5)
        assert clients[0].recv(1) == b""  # the failed one is closed, not left hanging
    finally:
        listener.close()
        await listener.wait_closed()
        for transport in made:
            transport.close()
        for client in clients:
            client.close()
        sock.close()


async def test_close_takes_in_the_connections_the_kernel_has_queued():
    # Closing the socket would reset them under requests their clients have already written; the
    # server's drain answers each once instead (tests/hostile/test_drain.py drives that end to end).
    from modelport.serving.listener import Listener

    made = []

    class Protocol(asyncio.Protocol):
        def connection_made(self, transport):
            made.append(transport)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    listener = Listener(sock, Protocol)
    # No await between the connects and the close: the loop never sees the socket readable.
    clients = [socket.create_connection(sock.getsockname()) for _ in range(16)]
    try:
        listener.close()
        sock.close()
        await listener.wait_closed()
        assert len(made) == 16
        listener.close()  # a second close (uvicorn's own shutdown closes again) takes nothing more
    finally:
        for transport in made:
            transport.close()
        for client in clients:
            client.close()

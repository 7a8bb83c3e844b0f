"""Front-end worker processes: ``workers=N`` copies of the whole server sharing its ports.

The parent reserves each port (bound with SO_REUSEPORT, never listening, so port 0 resolves to one
port for everyone), forks the workers before it has started any thread or event loop, and then only
supervises: it forwards SIGTERM/SIGINT, replaces a worker that dies after it started, and exits 0
when every worker has drained and exited 0. The kernel spreads connections across the workers'
listening sockets. Repository actions reach every worker through the supervisor (worker_sync.py), and
a replacement worker loads its models (and replays those actions) before it takes connections.

Each worker listens before its models load (liveness answers during a slow load), so a worker still
loading takes its share of connections and answers them 503 "loading". A worker therefore answers
ready only once every sibling has started too (DataPlane.ready): once any worker says ready, none
answers "loading".
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import time
from typing import TYPE_CHECKING, Iterable

from ..errors import StartupError
from ..observability.multiprocess import shared_metrics_dir
from .worker_sync import Hub

if TYPE_CHECKING:
    from ..model import Model
    from .server import ModelServer

logger = logging.getLogger("modelport")

_KILL_MARGIN = 5.0  # seconds past the grace period before a worker that has not exited is killed


def reserve_port(host: str, port: int, what: str) -> socket.socket:
    """Hold the port for the workers: bound with SO_REUSEPORT but never listening, so it takes no connections."""
    from .server import bind_socket

    return bind_socket(host, port, what, reuse_port=True, listen=False)


def _worker_main(server: "ModelServer", models: list, started, conn, replacement: bool, inherited: list, metrics_dir: str,
                 siblings: list) -> None:
    from ..errors import ModelportError

    for sig in (signal.SIGTERM, signal.SIGINT):  # the supervisor's handler is not ours: until the server
        signal.signal(sig, signal.SIG_DFL)        # installs its own, a signal simply ends this worker
    for other in inherited:  # the supervisor's ends of the siblings' pipes: theirs, not ours to hold open
        other.close()
    server._in_worker = True
    server.observability.use_multiprocess(metrics_dir, server.metrics)  # /metrics and stats sum all workers
    server._on_started = started.set
    server._worker_conn = conn
    server._load_first = replacement
    server._siblings_started = siblings
    try:
        server.start(models)
    except ModelportError as exc:
        logger.error("%s", exc)
        raise SystemExit(1) from None


def serve_workers(server: "ModelServer", models: Iterable["Model"] | None) -> None:
    """Run ``server.settings.workers`` copies of ``server``; returns when all have stopped."""
    s = server.settings
    reservations = [reserve_port(s.host, s.http_port, "HTTP")]
    s.http_port = reservations[0].getsockname()[1]
    if s.enable_grpc:
        reservations.append(reserve_port(s.host, s.grpc_port, "gRPC"))
        s.grpc_port = reservations[1].getsockname()[1]
    models = list(models or [])
    context = multiprocessing.get_context("fork")
    stopping = False
    kill_at = 0.0
    workers: dict[int, tuple] = {}
    hub = Hub()
    starts = {index: context.Event() for index in range(s.workers)}  # each worker's "started", made before any forks

    def spawn(index: int, replacement: bool = False) -> None:
        started = context.Event() if replacement else starts[index]
        starts[index] = started
        siblings = [event for i, event in starts.items() if i != index]  # not ready before all of these are set
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_worker_main,
            args=(server, models, started, theirs, replacement, [ours, *hub.conns.values()], metrics_dir, siblings),
            name=f"modelport-worker-{index}",
        )
        process.start()
        theirs.close()
        hub.add(index, ours)
        workers[index] = (process, started)

    def on_signal(signum, frame) -> None:
        nonlocal stopping, kill_at
        if not stopping:
            logger.info("Received %s; stopping %d workers", signal.Signals(signum).name, len(workers))
            # A worker still draining after its grace period (a load hook that will not return) is killed.
            kill_at = time.monotonic() + s.drain_delay + s.grace_period + _KILL_MARGIN
        stopping = True
        try:
            os.write(wake_w, b"!")
        except OSError:
            pass
        for process, _ in workers.values():
            if process.is_alive():
                process.terminate()  # SIGTERM: each worker drains on its own

    wake_r, wake_w = os.pipe()  # wakes the supervisor's wait when a signal arrives
    os.set_blocking(wake_w, False)
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    failed = False
    metrics = shared_metrics_dir()  # every worker's counters in files there (observability.multiprocess)
    metrics_dir = metrics.__enter__()
    try:
        for index in range(s.workers):
            spawn(index)
        logger.info("Started %d workers sharing HTTP port %d", s.workers, s.http_port)
        while workers:
            sentinels = {p.sentinel: i for i, (p, _) in workers.items()}
            pipes = {conn: i for i, conn in hub.conns.items()}
            timeout = max(0.0, kill_at - time.monotonic()) if stopping and kill_at != float("inf") else None
            ready_list = multiprocessing.connection.wait([*sentinels, *pipes, wake_r], timeout)
            if wake_r in ready_list:  # a signal arrived: wait again, now with the kill deadline
                os.read(wake_r, 512)
                ready_list.remove(wake_r)
            if stopping and not ready_list and time.monotonic() >= kill_at:
                for index, (process, _) in workers.items():
                    if process.is_alive():
                        logger.error("Worker %d did not stop within the grace period (%g s); killing it", index, s.grace_period)
                        process.kill()
                kill_at = float("inf")  # their sentinels come next
                failed = True
            for ready in ready_list:
                if ready in pipes:
                    if hub.conns.get(pipes[ready]) is ready:  # not closed in this round
                        hub.handle(pipes[ready])
                    continue
                index = sentinels[ready]
                process, started = workers.pop(index)
                process.join()
                hub.remove(index)
                if stopping:  # ended by the signal before it could handle one (still starting): stopped, not failed
                    failed |= process.exitcode not in (0, -signal.SIGTERM, -signal.SIGINT)
                elif not started.is_set():
                    # It never came up: the others would fail the same way. Stop everything.
                    failed, stopping = True, True
                    on_signal(signal.SIGTERM, None)
                else:
                    logger.error("Worker %d exited with code %s; starting a new one", index, process.exitcode)
                    spawn(index, replacement=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sock in reservations:
            sock.close()
        os.close(wake_r)
        os.close(wake_w)
        metrics.__exit__(None, None, None)
    if failed:
        raise StartupError("A worker process failed; see the lines above")

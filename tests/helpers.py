"""Starting real servers for tests (in the test's loop, or in a thread for sync clients), and counting the files they read."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import sys
import threading
from typing import Iterator

from modelport import ModelServer


def make_server(**kwargs) -> ModelServer:
    kwargs.setdefault("enable_grpc", False)
    kwargs.setdefault("grace_period", 5)
    return ModelServer(http_port=0, grpc_port=0, host="127.0.0.1", **kwargs)


@contextlib.contextmanager
def server_in_thread(models=(), **kwargs) -> Iterator[ModelServer]:
    """A real server on its own event loop in a thread, for blocking clients (e.g. tritonclient)."""
    server = make_server(**kwargs)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start_async(list(models)))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(30)
    if failure:
        raise failure[0]
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(grace_period=2), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# -- counting file access (what a scan of a models folder reads) -----------------------------------
_AUDITED: list[dict[str, list[str]]] = []  # the recordings in progress (an audit hook cannot be removed)


def _audit(event: str, args: tuple) -> None:
    if _AUDITED and event in ("open", "os.scandir", "os.listdir") and args and args[0] is not None:
        path = args[0]
        if isinstance(path, int):  # a file descriptor: no path to tell
            return
        path = os.fsdecode(os.fspath(path))
        for recording in _AUDITED:
            recording[event].append(path)


@contextlib.contextmanager
def file_access() -> Iterator[dict[str, list[str]]]:
    """Every file opened ("open") and folder listed ("os.scandir", "os.listdir") while the block runs,
    in any thread of this process: what a test counts instead of timing."""
    if not getattr(file_access, "hooked", False):
        sys.addaudithook(_audit)
        file_access.hooked = True  # type: ignore[attr-defined]
    recording: dict[str, list[str]] = collections.defaultdict(list)
    _AUDITED.append(recording)
    try:
        yield recording
    finally:
        _AUDITED.remove(recording)

"""Running `modelport serve` as a subprocess for the end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
BAD_SIGNS = ("Traceback", "Event loop is closed", "was never awaited", "Task exception was never retrieved")

class Served:
    """A `modelport serve` subprocess; its stderr is collected in a thread."""

    def __init__(self, *args: str, env: dict | None = None):
        full_env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "modelport.cli", "serve", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env, cwd=str(REPO),
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output)
            if match:
                return match
            if self.proc.poll() is not None:
                self._reader.join(2)
                match = re.search(pattern, self.output)
                if match:
                    return match
                raise AssertionError(f"server exited ({self.proc.returncode}) before {pattern!r}:\n{self.output}")
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {pattern!r}:\n{self.output}")

    def http_url(self, timeout: float = 30) -> str:
        port = self.wait_for(r"Listening for HTTP on http://[^:]+:(\d+)", timeout).group(1)
        return f"http://127.0.0.1:{port}"

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(5)
        self.proc.stdout.close()


@pytest.fixture
def served():
    started: list[Served] = []

    def _start(*args: str, **kwargs) -> Served:
        s = Served(*args, **kwargs)
        started.append(s)
        return s

    yield _start
    for s in started:
        s.kill()


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/v2/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("server never became ready")


LOOPBACK = ("--host", "127.0.0.1", "--http-port", "0", "--grpc-port", "0")

"""Running KServe-style scripts as their users do (``python model.py --http_port ...``), on modelport
(the script with ``kserve`` replaced by ``modelport``) and, for the peer tests, on KServe 0.16 itself.

The KServe venv is found at ``$MODELPORT_PEER_KSERVE`` or ``<repo>/.venv-peers/kserve`` (``.ci/run``
builds it there); the ``kserve_python`` fixture builds it when missing and skips if it cannot.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ..ports import unused_port

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "kserve_scripts"
KSERVE_VENV = Path(os.environ.get("MODELPORT_PEER_KSERVE", REPO / ".venv-peers" / "kserve"))
KSERVE_REQUIREMENT = "kserve==0.16.*"


def as_modelport(script: Path, into: Path) -> Path:
    """The same script with only its imports changed: every ``kserve`` name becomes ``modelport``."""
    out = into / script.name
    out.write_text(re.sub(r"\bkserve\b", "modelport", script.read_text()))
    return out


class Script:
    """A model script running as a subprocess; its output goes to a file read on demand."""

    def __init__(self, python: str, script: Path, *args: str, env: dict | None = None, log: Path):
        self.log = log
        self._out = open(log, "wb")
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen([python, str(script), *args], stdout=self._out, stderr=subprocess.STDOUT, env=full_env)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, url: str, model: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"script exited with {self.proc.returncode}:\n{self.output()}")
            try:
                r = httpx.get(f"{url}/v1/models/{model}", timeout=5)
                if r.status_code == 200 and r.json().get("ready"):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{model} not ready at {url} within {timeout} s:\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()


def modelport_env() -> dict:
    return {"PYTHONPATH": str(REPO), "MODELPORT_HOST": "127.0.0.1"}


@pytest.fixture(scope="session")
def kserve_python() -> str:
    python = KSERVE_VENV / "bin" / "python"
    if not python.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(KSERVE_VENV)], check=True, timeout=120)
            subprocess.run([str(KSERVE_VENV / "bin" / "pip"), "install", "-q", KSERVE_REQUIREMENT], check=True, timeout=900)
        except (subprocess.SubprocessError, OSError) as exc:
            pytest.skip(f"cannot build the KServe peer venv at {KSERVE_VENV}: {exc}")
    return str(python)

"""`modelport build` for real: the image is built with buildah and the server inside it answers.

No base image can be pulled here, so the test makes its own Debian base (debootstrap, cached in
~/.cache/modelport-test) and passes it as BASE_IMAGE; the build then runs the generated Dockerfile
unchanged. Where buildah or debootstrap is missing the test says so and skips: `.ci/run` installs both.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ..ports import unused_port

REPO = Path(__file__).resolve().parents[2]
BASE = "localhost/modelport-test-base:bookworm"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "modelport-test"
pytestmark = pytest.mark.timeout(900)


def _run(*args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kwargs)


def _ensure_base() -> None:
    """A Debian bookworm image with python3 and pip, and this machine's CA bundle (TLS to PyPI goes through it)."""
    if _run("buildah", "inspect", "--type", "image", BASE).returncode == 0:
        return
    rootfs = CACHE / "rootfs-bookworm"
    if not (rootfs / "usr" / "bin" / "pip3").exists():
        shutil.rmtree(rootfs, ignore_errors=True)
        made = _run("debootstrap", "--variant=minbase", "--include=python3,python3-pip", "bookworm", str(rootfs),
                    "http://deb.debian.org/debian", timeout=900)
        assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    python = rootfs / "usr" / "bin" / "python"
    if not python.exists():
        python.symlink_to("python3")
    shutil.copy2("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc" / "ssl" / "certs" / "ca-certificates.crt")
    container = _run("buildah", "from", "scratch").stdout.strip()
    try:
        assert _run("buildah", "copy", "-q", container, str(rootfs), "/").returncode == 0
        _run("buildah", "config", "--env", "PIP_BREAK_SYSTEM_PACKAGES=1", "--env", "PIP_CERT=/etc/ssl/certs/ca-certificates.crt", container)
        assert _run("buildah", "commit", "-q", container, BASE).returncode == 0
    finally:
        _run("buildah", "rm", container)


def _server_pids() -> list[int]:
    """The server's Python process inside the image's chroot, found from the host (not buildah's exec helper)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
                if cmd.startswith(b"/usr/bin/python3 /usr/local/bin/modelport serve") and os.readlink(proc / "root") != "/":
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def test_build_and_run_the_image(tmp_path):
    missing = [tool for tool in ("buildah", "debootstrap") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed here (apt-get install buildah debootstrap); the image build is untested")
    _ensure_base()
    tag = f"localhost/modelport-test-iris:{os.getpid()}"
    built = _run(sys.executable, "-m", "modelport.cli", "build", str(REPO / "modelport" / "examples" / "models"), "-t", tag,
                 "--engine", "buildah", "--base", BASE, "-o", str(tmp_path / "ctx"),
                 env={**os.environ, "PYTHONPATH": str(REPO), "BUILDAH_ISOLATION": "chroot"}, timeout=900)
    assert built.returncode == 0, built.stderr[-3000:]
    try:
        config = json.loads(_run("buildah", "inspect", "--type", "image", tag).stdout)["OCIv1"]["config"]
        assert config["User"] == "10001:10001" and config["StopSignal"] == "SIGTERM"
        assert config["Entrypoint"] == ["modelport", "serve"] and config["Cmd"] == ["/opt/modelport/models"]
        # Run it as an engine would: its entry point and command, on a free loopback port.
        port = unused_port()
        container = _run("buildah", "from", tag).stdout.strip()
        proc = subprocess.Popen(
            ["buildah", "run", "--isolation", "chroot", "--network", "host", "-e", f"MODELPORT_HTTP_PORT={port}",
             "-e", "MODELPORT_HOST=127.0.0.1", "-e", "MODELPORT_ENABLE_GRPC=false", container, "--",
             *config["Entrypoint"], *config["Cmd"]],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None and time.monotonic() < deadline, "the image's server never became ready"
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            answer = httpx.post(f"http://127.0.0.1:{port}/v1/models/iris:predict", json={"instances": [[6.7, 3.0, 5.2, 2.3]]})
            assert answer.json() == {"predictions": [2]}
            for pid in _server_pids():  # buildah would SIGKILL its child; the server itself gets SIGTERM
                os.kill(pid, signal.SIGTERM)
            output = proc.communicate(timeout=60)[0]
            assert "Server stopped" in output
        finally:
            if proc.poll() is None:
                proc.kill()
            _run("buildah", "rm", container)
    finally:
        _run("buildah", "rmi", "-f", tag)

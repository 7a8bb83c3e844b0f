"""MLServer 1.7.1's own runtime packages from PyPI (mlserver-mlflow, mlserver-huggingface), unpacked
into a test folder with ``mlserver`` renamed ``modelport.mlserver`` in their imports (never committed).

The wheels are read from ``$MODELPORT_PEER_MLSERVER_RUNTIMES`` or ``<repo>/.venv-peers/mlserver-runtimes``;
when missing they are fetched there with ``pip download --no-deps`` (the package registry only).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WHEELS = Path(os.environ.get("MODELPORT_PEER_MLSERVER_RUNTIMES", REPO / ".venv-peers" / "mlserver-runtimes"))
VERSION = "1.7.1"


def wheel(project: str) -> Path:
    pattern = f"{project.replace('-', '_')}-{VERSION}-*.whl"
    found = sorted(WHEELS.glob(pattern))
    if not found:
        try:
            WHEELS.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"{project}=={VERSION}", "-d", str(WHEELS)],
                           check=True, timeout=300, capture_output=True)
        except (subprocess.SubprocessError, OSError) as exc:
            pytest.skip(f"cannot fetch {project}=={VERSION} into {WHEELS}: {exc}")
        found = sorted(WHEELS.glob(pattern))
    return found[-1]


def unpack_renamed(project: str, into: Path) -> Path:
    """The package of ``project``'s wheel under ``into``, imports renamed; returns ``into``."""
    package = project.replace("-", "_")
    with zipfile.ZipFile(wheel(project)) as archive:
        for name in archive.namelist():
            if not name.startswith(package + "/"):
                continue
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            data = archive.read(name)
            if name.endswith(".py"):
                data = re.sub(rb"\bmlserver\b", b"modelport.mlserver", data)
            target.write_bytes(data)
    return into

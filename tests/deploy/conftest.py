from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def kserve_python() -> str:
    """The Python of a virtualenv with the KServe SDK (the peer venv .ci/run builds)."""
    path = os.environ.get("MODELPORT_KSERVE_PYTHON") or str(REPO / ".venv-peers" / "kserve" / "bin" / "python")
    if not Path(path).exists():
        pytest.fail(f"No KServe peer virtualenv at {path}; .ci/run builds it (or set MODELPORT_KSERVE_PYTHON)")
    return path

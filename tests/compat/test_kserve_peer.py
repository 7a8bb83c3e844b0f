"""The same KServe script on KServe 0.16 and on modelport (imports changed): same status, body and ce-* headers."""

from __future__ import annotations

import sys

import httpx
import pytest

from .kserve_peer import SCRIPTS, Script, as_modelport, unused_port, kserve_python, modelport_env  # noqa: F401

# The first peer test builds the peer virtualenv when .ci/run has not (a few minutes): a longer limit for these.
pytestmark = [pytest.mark.peer_kserve, pytest.mark.timeout(1200)]
MODEL = "enwiki-goodfaith"
EVENT = {"specversion": "1.0", "id": "e1", "source": "t", "type": "io.test.req", "time": "2026-12-01T00:00:00Z"}
CE_HEADERS = {"ce-specversion": "1.0", "ce-id": "e2", "ce-source": "t", "ce-type": "io.test.req"}
JSON = {"content-type": "application/json"}

# (model, body, headers): KServe hands non-JSON content types to the model as bytes, so send JSON's.
CASES = [
    (MODEL, {"rev_id": 1097728152}, JSON),
    ("strict", {"foo": 1}, JSON),
    ("strict", {"instances": [[1], [2]]}, JSON),
    ("strict", {"instances": "x"}, JSON),
    ("split", {"instances": "a,b"}, JSON),
    ("split", {"instances": {"a": 1}}, JSON),
    ("echo", {"x": [1, 2]}, JSON),
    ("echo", {"a": 1}, {**CE_HEADERS, **JSON}),
    ("echo", {**EVENT, "data": {"a": 2}}, {"content-type": "application/cloudevents+json"}),
    ("echo", {**EVENT, "data": {"a": 3}}, JSON),  # structured body, plain JSON reply
]


def _answer(url: str, model: str, body: dict, headers: dict) -> tuple:
    r = httpx.post(f"{url}/v1/models/{model}:predict", json=body, headers=headers, timeout=30)
    doc = r.json()
    if isinstance(doc, dict):
        doc = {k: v for k, v in doc.items() if k not in ("id", "time")}  # fresh per response
    ce = {k: v for k, v in r.headers.items() if k.startswith("ce-") and k not in ("ce-id", "ce-time")}
    ce_fresh = sorted(k for k in r.headers if k in ("ce-id", "ce-time"))
    return r.status_code, doc, ce, ce_fresh, r.headers.get("content-type")


@pytest.fixture(scope="module")
def both(tmp_path_factory, kserve_python):
    tmp = tmp_path_factory.mktemp("kserve-peer")
    servers = {}
    try:
        for name, python, script, env in (
            ("kserve", kserve_python, SCRIPTS / "predictor.py", {}),
            ("modelport", sys.executable, as_modelport(SCRIPTS / "predictor.py", tmp), modelport_env()),
        ):
            http, grpc = unused_port(), unused_port()
            proc = Script(python, script, "--http_port", str(http), "--grpc_port", str(grpc), "--model_name", MODEL,
                          env=env, log=tmp / f"{name}.log")
            servers[name] = (f"http://127.0.0.1:{http}", proc)
        for url, proc in servers.values():
            proc.wait_ready(url, MODEL, timeout=110)
        yield {name: url for name, (url, _) in servers.items()}
    finally:
        for _, proc in servers.values():
            proc.stop()


@pytest.mark.parametrize("model, body, headers", CASES, ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(CASES)])
def test_same_answer_as_kserve(both, model, body, headers):
    theirs = _answer(both["kserve"], model, body, headers)
    ours = _answer(both["modelport"], model, body, headers)
    assert ours == theirs


def test_the_import_list_is_kserves_own(kserve_python):
    # Every line of the coverage list works on KServe 0.16 itself (so the list measures real usage).
    from .test_kserve_api import kserve_imports

    import subprocess

    code = "\n".join(kserve_imports())
    proc = subprocess.run([kserve_python, "-c", code], capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stderr


# The Kubernetes client that KServe's package also carries: not a model server's (README: keep using
# the kserve package for it).
K8S_CLIENT_MODULES = {"api", "api_client", "configuration", "exceptions", "models", "rest"}
# KServe modules with no modelport counterpart, and why (README: Migrating from KServe, "Not supported").
MODULE_GAPS = {"context"}  # KServe's process-wide PredictorConfig holder; ModelServer(predictor_config=...) instead
MODULE_ATTRIBUTES = ("import json, types, {0}\n"
                     "print(json.dumps(sorted(n for n, v in vars({0}).items() if isinstance(v, types.ModuleType))))")


def test_every_module_path_import_kserve_binds_is_an_attribute_of_modelport(kserve_python):
    # Issue 21: after a bare `import kserve`, scripts reach kserve.<module>.<name>; the same paths on modelport.
    import json
    import os
    import subprocess

    from .kserve_peer import REPO

    peer = subprocess.run([kserve_python, "-c", MODULE_ATTRIBUTES.format("kserve")], capture_output=True, text=True,
                          timeout=110)
    assert peer.returncode == 0, peer.stderr
    wanted = sorted(set(json.loads(peer.stdout)) - K8S_CLIENT_MODULES - MODULE_GAPS)
    assert {"model_server", "inference_client", "predictor_config"} <= set(wanted)
    check = ("import json, types, modelport\n"
             f"print(json.dumps([n for n in {wanted!r}\n"
             "                  if not isinstance(getattr(modelport, n, None), types.ModuleType)]))")
    ours = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=110,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert ours.returncode == 0, ours.stderr
    assert json.loads(ours.stdout) == []


def test_transformer_script_same_answer_as_kserve(both, kserve_python, tmp_path):
    # The LiftWing transformer on KServe (its --predictor_host flag) and on modelport (only its own
    # self.predictor_host), both in front of the modelport predictor.
    predictor = both["modelport"].rsplit("/", 1)[-1]
    runs = {}
    try:
        for name, python, script, args, env in (
            ("kserve", kserve_python, SCRIPTS / "transformer.py", ["--predictor_host", predictor], {}),
            ("modelport", sys.executable, as_modelport(SCRIPTS / "transformer.py", tmp_path), ["--upstream", predictor],
             modelport_env()),
        ):
            http = unused_port()
            runs[name] = (f"http://127.0.0.1:{http}", Script(
                python, script, "--http_port", str(http), "--grpc_port", str(unused_port()), "--model_name", MODEL,
                "--enable_grpc", "false", *args, env=env, log=tmp_path / f"transformer-{name}.log",
            ))
        for url, proc in runs.values():
            proc.wait_ready(url, MODEL, timeout=110)
        answers = {name: _answer(url, MODEL, {"rev_id": 1097728152}, JSON) for name, (url, _) in runs.items()}
        assert answers["modelport"] == answers["kserve"]
        assert answers["modelport"][0] == 200
    finally:
        for _, proc in runs.values():
            proc.stop()

"""`modelport k8s`: every emitted resource validates against its schema, and its probes and ports fit the server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import kubernetes_validate
import pytest
import yaml

from modelport.deploy.k8s import K8sOptions, resources
from modelport.deploy.plan import plan_folder

REPO = Path(__file__).resolve().parents[2]
PAIR = REPO / "examples" / "transformer"
K8S_VERSION = "1.33.0"


def emit(*args: str) -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-m", "modelport.cli", "k8s", *args], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)}, check=True,
    ).stdout
    return list(yaml.safe_load_all(out))


def test_plan_of_a_transformer_pair():
    plan = plan_folder(PAIR)
    assert plan.name == "transformer"
    assert plan.models == {"iris": "sklearn"}  # a custom class declaring platform sklearn needs that extra
    assert plan.transformer is not None and plan.transformer.name == "transformer-transformer"
    assert plan.runtimes == ["sklearn"] and plan.model_formats == ["sklearn"]


def test_plain_resources_validate_strictly():
    docs = emit(str(PAIR), "--image", "registry.local/iris:1", "--target", "plain", "--namespace", "ml")
    assert [d["kind"] for d in docs] == ["Deployment", "Service", "HorizontalPodAutoscaler"] * 2
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    transformer = docs[3]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in transformer["env"]}
    assert env["MODELPORT_PREDICTOR_HOST"] == "transformer:8080"  # the predictor's Service


def test_a_broken_resource_fails_validation():
    """The validator is not a rubber stamp: a misspelt field is refused."""
    doc = emit(str(PAIR), "--image", "x:1", "--target", "plain")[0]
    doc["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.timeout(1200)  # the kserve_python fixture builds the peer venv when .ci/run has not
def test_kserve_resources_validate_against_the_kserve_sdk(kserve_python):
    docs = emit(str(PAIR), "--image", "registry.local/iris:1", "--target", "all")
    kserve = [d for d in docs if d["apiVersion"].startswith("serving.kserve.io/")]
    assert [d["kind"] for d in kserve] == ["InferenceService", "ServingRuntime", "ClusterServingRuntime", "ServingRuntime"]
    check = subprocess.run([kserve_python, str(Path(__file__).with_name("kserve_schema_check.py"))],
                           input=json.dumps(kserve), capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == ""
    broken = json.loads(json.dumps(kserve))
    broken[0]["spec"]["predictor"]["containers"][0]["bogus"] = 1
    check = subprocess.run([kserve_python, str(Path(__file__).with_name("kserve_schema_check.py"))],
                           input=json.dumps(broken), capture_output=True, text=True, timeout=120)
    assert "bogus: not a field of V1Container" in check.stdout


def test_inference_service_shape():
    plan = plan_folder(PAIR)
    isvc = resources(plan, K8sOptions(image="x:1"), "kserve")[0]
    predictor, transformer = isvc["spec"]["predictor"], isvc["spec"]["transformer"]
    assert predictor["containers"][0]["args"] == ["/opt/modelport/models/predictor"]
    assert transformer["containers"][0]["args"] == ["/opt/modelport/models/transformer"]
    # The pod outlives the preStop pause plus the server's whole drain.
    assert predictor["terminationGracePeriodSeconds"] >= 5 + plan.settings.grace_period


def test_modelmesh_runtime_has_the_adapter_contract():
    runtime = resources(plan_folder(PAIR), K8sOptions(image="x:1"), "modelmesh")[0]
    spec = runtime["spec"]
    assert spec["multiModel"] is True and spec["protocolVersions"] == ["grpc-v2"]
    assert spec["builtInAdapter"]["serverType"] == "mlserver"
    assert spec["builtInAdapter"]["runtimeManagementPort"] == 8001 and spec["grpcDataEndpoint"] == "port:8001"
    env = {e["name"]: e["value"] for e in spec["containers"][0]["env"]}
    assert env["MLSERVER_GRPC_PORT"] == "8001" and env["MLSERVER_LOAD_MODELS_AT_STARTUP"] == "false"


async def test_probes_point_at_real_endpoints(serve):
    """The probe paths and port the Deployment declares answer 200 on a real server with a model loaded."""
    from tests.fixture_models import SumModel

    server, client = await serve([SumModel("sum")])
    plan = plan_folder(PAIR)
    container = resources(plan, K8sOptions(image="x:1"), "plain")[0]["spec"]["template"]["spec"]["containers"][0]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 8080, "grpc": 8081}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == plan.settings.http_port
        response = await client.get(container[probe]["httpGet"]["path"])
        assert response.status_code == 200, probe


def test_bad_arguments_are_one_line_errors(tmp_path):
    run = subprocess.run([sys.executable, "-m", "modelport.cli", "k8s", str(tmp_path / "nope"), "--image", "x:1"],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert run.returncode == 2 and "does not exist" in run.stderr and "Traceback" not in run.stderr
    run = subprocess.run([sys.executable, "-m", "modelport.cli", "k8s", str(PAIR), "--image", "x:1", "--max-replicas", "0"],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert run.returncode == 2 and "min_replicas" in run.stderr

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

from modelport.deploy.image import dockerfile
from modelport.deploy.k8s import DEPLOYMENT_MODE, K8sOptions, resources
from modelport.deploy.plan import plan_folder

from .knative_rules import component_violations, pod_violations, runtime_violations

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


def test_the_default_inference_service_passes_knatives_rules():
    """Serverless-safe by default: it applies whichever mode the KServe install defaults to."""
    isvc = emit(str(PAIR), "--image", "x:1", "--target", "kserve")[0]
    assert DEPLOYMENT_MODE not in isvc["metadata"]["annotations"]
    for part in ("predictor", "transformer"):
        assert component_violations(isvc["spec"][part], f"{part}.") == []
        container = isvc["spec"][part]["containers"][0]
        assert [p["name"] for p in container["ports"]] == ["http1"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_the_raw_inference_service_carries_its_mode_and_the_drain_settings():
    plan = plan_folder(PAIR)
    isvc = emit(str(PAIR), "--image", "x:1", "--target", "kserve", "--kserve-mode", "raw")[0]
    assert isvc["metadata"]["annotations"][DEPLOYMENT_MODE] == "RawDeployment"
    predictor = isvc["spec"]["predictor"]
    container = predictor["containers"][0]
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    # The pod outlives the preStop pause plus the server's whole drain.
    assert predictor["terminationGracePeriodSeconds"] >= 5 + plan.settings.grace_period
    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/live"
    # The checks are not a rubber stamp: Knative refuses exactly these fields, which is why raw says so.
    found = component_violations(predictor, "predictor.")
    assert "predictor.terminationGracePeriodSeconds: not allowed in a Knative revision" in found
    assert "predictor.containers[0].lifecycle: not allowed" in found


def test_knative_rules_catch_ports_env_and_mounts():
    pod = {"containers": [
        {"name": "queue-proxy", "image": "x", "ports": [{"name": "web", "containerPort": 8012}],
         "env": [{"name": "PORT", "value": "1"}], "volumeMounts": [{"name": "v", "mountPath": "/dev/"}],
         "readinessProbe": {"httpGet": {"path": "/", "port": 9000}}},
        {"name": "b", "image": "x", "ports": [{"containerPort": 8081}]}],
        "volumes": [{"name": "v", "hostPath": {"path": "/"}}]}
    found = "\n".join(pod_violations(pod))
    for fragment in ("queue-proxy is reserved", "name 'web'", "8012 is a reserved port", "env PORT: reserved",
                     "/dev/: reserved path", "port 9000 must match", "more than one container port", "hostPath"):
        assert fragment in found, fragment


def test_runtime_targets_have_distinct_names_one_port_and_a_priority_above_the_stock_runtimes():
    namespaced, cluster = emit(str(PAIR), "--image", "x:1", "--target", "runtime")
    assert (namespaced["kind"], cluster["kind"]) == ("ServingRuntime", "ClusterServingRuntime")
    assert namespaced["metadata"]["name"] != cluster["metadata"]["name"]
    for runtime in (namespaced, cluster):
        spec = runtime["spec"]
        assert runtime_violations(runtime) == []
        assert [p["name"] for p in spec["containers"][0]["ports"]] == ["http1"]
        assert "--enable_grpc=false" in spec["containers"][0]["args"]  # nothing listens that is not declared
        assert spec["protocolVersions"] == ["v1", "v2"]
        # KServe's stock runtimes rank sklearn at 1 (sklearnserver), 2 (mlserver) and 3 (predictiveserver).
        assert all(f["priority"] > 3 and f["autoSelect"] for f in spec["supportedModelFormats"])


def test_modelmesh_runtime_has_the_adapter_contract():
    runtime = resources(plan_folder(PAIR), K8sOptions(image="x:1"), "modelmesh")[0]
    spec = runtime["spec"]
    assert spec["multiModel"] is True and spec["protocolVersions"] == ["grpc-v2"]
    assert spec["builtInAdapter"]["serverType"] == "mlserver"
    assert spec["builtInAdapter"]["runtimeManagementPort"] == 8001 and spec["grpcDataEndpoint"] == "port:8001"
    container = spec["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLSERVER_GRPC_PORT"] == "8001" and env["MLSERVER_LOAD_MODELS_AT_STARTUP"] == "false"
    # A read-only root with a writable /tmp (the model cache lives there).
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"] and {"name": "tmp", "emptyDir": {}} in spec["volumes"]


def test_the_modelmesh_runtime_listens_where_the_adapter_says(tmp_path):
    """The image's environment, then the runtime's container env, as Kubernetes merges them: the server
    listens on the adapter's loopback host, even for an image that still sets MODELPORT_HOST=0.0.0.0."""
    plan = plan_folder(PAIR)
    image_env = _dockerfile_env(dockerfile(plan))
    assert "MODELPORT_HOST" not in image_env
    runtime = resources(plan, K8sOptions(image="x:1"), "modelmesh")[0]
    pod_env = {e["name"]: e["value"] for e in runtime["spec"]["containers"][0]["env"]}
    # Ports 0 (the test's own rule) and a temp folder for the models; host and everything else as generated.
    overrides = {"MLSERVER_HTTP_PORT": "0", "MLSERVER_GRPC_PORT": "0", "MLSERVER_MODELS_DIR": str(tmp_path)}
    for old_image in ({}, {"MODELPORT_HOST": "0.0.0.0"}):
        env = {**os.environ, **image_env, **old_image, **pod_env, **overrides, "PYTHONPATH": str(REPO),
               "MODELPORT_MODEL_CACHE": str(tmp_path / "cache")}
        env.pop("MODELPORT_MODEL_REPOSITORY", None)
        proc = subprocess.Popen([sys.executable, "-m", "modelport.cli", "serve", str(tmp_path)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            line = ""
            for line in proc.stdout:
                if "Listening for HTTP" in line:
                    break
            assert "Listening for HTTP on http://127.0.0.1:" in line, line
        finally:
            proc.terminate()
            proc.wait(30)
            proc.stdout.close()


def _dockerfile_env(text: str) -> dict[str, str]:
    """The ENV instruction of a generated Dockerfile, as KEY=VALUE pairs."""
    joined = text.replace("\\\n", " ")
    env = {}
    for line in joined.splitlines():
        if line.startswith("ENV "):
            for pair in line[4:].split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


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

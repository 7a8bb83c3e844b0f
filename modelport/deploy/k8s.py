"""``modelport k8s``: Kubernetes resources for a model folder and an image.

Four targets, each a list of plain dicts (YAML on output):

* ``kserve``: a KServe ``InferenceService`` with a custom predictor container (and a transformer
  container when the folder is a transformer pair). By default it is serverless-safe: nothing that
  Knative's field mask rejects (no ``lifecycle``, ``startupProbe`` or ``terminationGracePeriodSeconds``;
  one ``http1`` port), so it applies in either KServe mode. ``kserve_mode="raw"`` adds the
  ``serving.kserve.io/deploymentMode: RawDeployment`` annotation and the drain settings (``preStop``
  pause, ``terminationGracePeriodSeconds``, startup probe), which only a raw deployment honours;
* ``runtime``: a KServe ``ServingRuntime`` and ``ClusterServingRuntime`` (distinct names: apply one) whose
  container serves whatever the storage initializer puts in ``/mnt/models`` (``--model_name``/``--model_dir``,
  as KServe's own runtimes are called) on one HTTP port, with ``supportedModelFormats`` from the folder's
  runtimes at a priority above the stock runtimes';
* ``modelmesh``: a ModelMesh ``ServingRuntime`` with ``builtInAdapter`` (serverType ``mlserver``) and the
  ``MLSERVER_*`` environment that makes modelport answer that adapter as MLServer does, on loopback only;
* ``plain``: a ``Deployment``, a ``Service`` and a ``HorizontalPodAutoscaler``.

Probes use the real live/ready endpoints; where the mode allows them (plain, KServe raw),
``terminationGracePeriodSeconds`` and the ``preStop`` pause cover the server's drain (``drain_delay`` +
``grace_period``); ports come from the folder's settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput
from .image import serve_path
from .plan import DeployPlan

TARGETS = ("kserve", "runtime", "modelmesh", "plain")
KSERVE_MODES = ("serverless", "raw")
DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
# Stock KServe runtimes rank formats at priority 1 to 3 (config/runtimes); the admission webhook refuses two
# auto-selected runtimes of one kind with the same format, protocol and priority. Above them all:
RUNTIME_PRIORITY = 10
Resource = dict[str, Any]

# The ModelMesh MLServer adapter's ports and the environment its stock MLServer runtime sets.
MODELMESH_GRPC_PORT = 8001
MODELMESH_HTTP_PORT = 8002
MODELMESH_ADAPTER_PORT = 8085


@dataclass
class K8sOptions:
    image: str
    namespace: str | None = None
    replicas: int = 1
    min_replicas: int = 1
    max_replicas: int = 4
    target_cpu_utilization: int = 70
    cpu: str = "1"
    memory: str = "1Gi"
    cpu_limit: str | None = None
    memory_limit: str | None = None
    gpus: int = 0
    prestop_seconds: int = 5  # time for endpoints to drop the pod before SIGTERM reaches the server
    kserve_mode: str = "serverless"  # the InferenceService: "serverless" (safe in both modes) or "raw"

    def validate(self) -> None:
        if not self.image:
            raise InvalidInput("An image is needed (--image), e.g. the tag given to `modelport build`")
        if self.replicas < 0 or self.min_replicas < 1 or self.max_replicas < self.min_replicas:
            raise InvalidInput("Replicas: need 0 <= replicas and 1 <= min_replicas <= max_replicas")
        if self.kserve_mode not in KSERVE_MODES:
            raise InvalidInput(f"kserve_mode must be one of {', '.join(KSERVE_MODES)}, not {self.kserve_mode!r}")
        if not 1 <= self.target_cpu_utilization <= 100:
            raise InvalidInput("target_cpu_utilization must be a percentage (1-100)")


def resources(plan: DeployPlan, options: K8sOptions, target: str) -> list[Resource]:
    options.validate()
    if target == "kserve":
        return [inference_service(plan, options)]
    if target == "runtime":
        return [serving_runtime(plan, options, cluster=False), serving_runtime(plan, options, cluster=True)]
    if target == "modelmesh":
        return [modelmesh_runtime(plan, options)]
    if target == "plain":
        out = plain(plan, options)
        if plan.transformer is not None:
            out += plain(plan.transformer, options, predictor=plan)
        return out
    raise InvalidInput(f"Unknown target {target!r}; choose one of {', '.join(TARGETS)}")


# -- shared pieces ---------------------------------------------------------------------------------
def _metadata(name: str, options: K8sOptions, labels: dict | None = None, cluster: bool = False) -> Resource:
    meta: Resource = {"name": name, "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "modelport"}}
    if labels:
        meta["labels"].update(labels)
    if options.namespace and not cluster:
        meta["namespace"] = options.namespace
    return meta


def _resources(options: K8sOptions) -> Resource:
    requests = {"cpu": options.cpu, "memory": options.memory}
    limits = {"memory": options.memory_limit or options.memory}
    if options.cpu_limit:
        limits["cpu"] = options.cpu_limit
    if options.gpus:
        limits["nvidia.com/gpu"] = str(options.gpus)
    return {"requests": requests, "limits": limits}


def _grace_seconds(plan: DeployPlan, options: K8sOptions) -> int:
    s = plan.settings
    drain = float(getattr(s, "drain_delay", 0) or 0)
    return int(options.prestop_seconds + drain + s.grace_period + 5)


def _probes(port: int) -> Resource:
    def http(path: str, period: int, failures: int) -> Resource:
        return {"httpGet": {"path": path, "port": port}, "periodSeconds": period, "timeoutSeconds": 2, "failureThreshold": failures}

    return {
        # Listeners come up before models load: liveness answers at once, readiness once models are loaded.
        "startupProbe": http("/v2/health/live", 2, 30),
        "livenessProbe": http("/v2/health/live", 10, 3),
        "readinessProbe": http("/v2/health/ready", 5, 2),
    }


def _security() -> Resource:
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _container(plan: DeployPlan, options: K8sOptions, name: str, args: list[str], env: list[Resource] | None = None,
               ports: list[Resource] | None = None, probes: bool = True) -> Resource:
    s = plan.settings
    container: Resource = {
        "name": name,
        "image": options.image,
        "args": args,
        "env": [{"name": "MODELPORT_HOST", "value": "0.0.0.0"}, *(env or [])],
        "ports": ports if ports is not None else [
            {"name": "http", "containerPort": s.http_port, "protocol": "TCP"},
            {"name": "grpc", "containerPort": s.grpc_port, "protocol": "TCP"},
        ],
        "resources": _resources(options),
        "securityContext": _security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(options.prestop_seconds)]}}},
    }
    if probes:
        container.update(_probes(s.http_port))
    return container


_TMP_VOLUME = {"name": "tmp", "emptyDir": {}}
_SCRAPE = {"prometheus.io/scrape": "true", "prometheus.io/path": "/metrics"}


# -- KServe ---------------------------------------------------------------------------------------
def _knative_safe(container: Resource) -> Resource:
    """The container without what Knative's field mask rejects (lifecycle; startupProbe on older Knative)."""
    container.pop("lifecycle", None)
    container.pop("startupProbe", None)
    return container


def inference_service(plan: DeployPlan, options: K8sOptions) -> Resource:
    s = plan.settings
    raw = options.kserve_mode == "raw"
    annotations = {"prometheus.kserve.io/port": str(s.http_port), "prometheus.kserve.io/path": "/metrics"}
    if raw:  # the drain settings below need a plain Deployment: Knative refuses them
        annotations[DEPLOYMENT_MODE] = "RawDeployment"
    # KServe routes one port per component; gRPC clients use a separate InferenceService with h2c.
    http_only = [{"name": "http1", "containerPort": s.http_port, "protocol": "TCP"}]

    def component(p: DeployPlan, container: Resource) -> Resource:
        out: Resource = {"minReplicas": options.min_replicas, "maxReplicas": options.max_replicas}
        if raw:
            out["terminationGracePeriodSeconds"] = _grace_seconds(p, options)
        out["containers"] = [container if raw else _knative_safe(container)]
        out["volumes"] = [_TMP_VOLUME]
        return out

    spec: Resource = {"predictor": component(
        plan, _container(plan, options, "kserve-container", [serve_path(plan, "predictor")], ports=http_only))}
    if plan.transformer is not None:
        t = plan.transformer
        # KServe appends --model_name and --predictor_host to a transformer's arguments.
        spec["transformer"] = component(t, _container(
            t, options, "kserve-container", [serve_path(plan, "transformer")], ports=http_only,
            env=[{"name": "MODELPORT_PREDICTOR_PROTOCOL", "value": t.settings.predictor_protocol}]))
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {**_metadata(plan.name, options), "annotations": annotations},
        "spec": spec,
    }


def serving_runtime(plan: DeployPlan, options: K8sOptions, cluster: bool = False) -> Resource:
    """One HTTP port (KServe routes one per component, and Knative allows one), so gRPC stays off."""
    s = plan.settings
    formats = plan.model_formats or ["custom"]
    args = ["/mnt/models", "--model_name={{.Name}}", "--model_dir=/mnt/models", f"--http_port={s.http_port}",
            "--enable_grpc=false"]
    ports = [{"name": "http1", "containerPort": s.http_port, "protocol": "TCP"}]
    container = _knative_safe(_container(plan, options, "kserve-container", args, ports=ports, probes=False))
    name = f"{plan.name}-cluster-runtime" if cluster else f"{plan.name}-runtime"
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ClusterServingRuntime" if cluster else "ServingRuntime",
        "metadata": {**_metadata(name, options, cluster=cluster),
                     "annotations": {"prometheus.kserve.io/port": str(s.http_port), "prometheus.kserve.io/path": "/metrics"}},
        "spec": {
            "supportedModelFormats": [
                {"name": f, "version": "1", "autoSelect": True, "priority": RUNTIME_PRIORITY} for f in formats],
            "protocolVersions": ["v1", "v2"],
            "multiModel": False,
            "containers": [container],
            "volumes": [_TMP_VOLUME],
        },
    }


def modelmesh_runtime(plan: DeployPlan, options: K8sOptions) -> Resource:
    env = [
        {"name": "MLSERVER_MODELS_DIR", "value": "/models/_mlserver_models/"},
        {"name": "MLSERVER_GRPC_PORT", "value": str(MODELMESH_GRPC_PORT)},
        {"name": "MLSERVER_HTTP_PORT", "value": str(MODELMESH_HTTP_PORT)},
        {"name": "MLSERVER_LOAD_MODELS_AT_STARTUP", "value": "false"},
        {"name": "MLSERVER_MODEL_NAME", "value": "dummy-model-fixme"},
        {"name": "MLSERVER_HOST", "value": "127.0.0.1"},
        {"name": "MLSERVER_GRPC_MAX_MESSAGE_LENGTH", "value": "-1"},
    ]
    # MODELPORT_* outranks MLSERVER_* in the settings: say the adapter's host under modelport's name too, so an
    # image whose environment sets MODELPORT_HOST=0.0.0.0 still listens on loopback only, as the adapter expects.
    env.append({"name": "MODELPORT_HOST", "value": "127.0.0.1"})
    container = _container(plan, options, "mlserver", ["/models/_mlserver_models/"], env=env, ports=[], probes=False)
    container["env"] = env
    container.pop("ports")
    container.pop("lifecycle")  # ModelMesh mounts /models itself; /tmp (the model cache) is ours to make writable
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {**_metadata(f"{plan.name}-modelmesh", options), "annotations": {"maxLoadingConcurrency": "2"}},
        "spec": {
            "supportedModelFormats": [{"name": f, "version": "1", "autoSelect": True} for f in (plan.model_formats or ["custom"])],
            "protocolVersions": ["grpc-v2"],
            "multiModel": True,
            "grpcEndpoint": f"port:{MODELMESH_ADAPTER_PORT}",
            "grpcDataEndpoint": f"port:{MODELMESH_GRPC_PORT}",
            "containers": [container],
            "volumes": [_TMP_VOLUME],
            "builtInAdapter": {
                "serverType": "mlserver",
                "runtimeManagementPort": MODELMESH_GRPC_PORT,
                "memBufferBytes": 134217728,
                "modelLoadingTimeoutMillis": 90000,
            },
        },
    }


# -- plain Kubernetes ------------------------------------------------------------------------------
def plain(plan: DeployPlan, options: K8sOptions, predictor: DeployPlan | None = None) -> list[Resource]:
    """Deployment + Service + HorizontalPodAutoscaler; ``predictor`` given: this is its transformer."""
    s = plan.settings
    name = plan.name
    selector = {"app.kubernetes.io/name": name}
    env = []
    path = serve_path(predictor, "transformer") if predictor is not None else serve_path(plan, "predictor")
    if predictor is not None:
        env = [
            {"name": "MODELPORT_PREDICTOR_HOST", "value": f"{predictor.name}:{predictor.settings.http_port}"},
            {"name": "MODELPORT_PREDICTOR_PROTOCOL", "value": s.predictor_protocol},
        ]
    pod = {
        "metadata": {"labels": selector, "annotations": {**_SCRAPE, "prometheus.io/port": str(s.http_port)}},
        "spec": {
            "terminationGracePeriodSeconds": _grace_seconds(plan, options),
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001},
            "containers": [_container(plan, options, "modelport", [path], env=env)],
            "volumes": [_TMP_VOLUME],
        },
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(name, options),
        "spec": {
            "replicas": options.replicas,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": pod,
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, options),
        "spec": {
            "selector": selector,
            "ports": [
                {"name": "http", "port": s.http_port, "targetPort": "http", "protocol": "TCP"},
                {"name": "grpc", "port": s.grpc_port, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "grpc"},
            ],
        },
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(name, options),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": options.min_replicas,
            "maxReplicas": options.max_replicas,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                                      "averageUtilization": options.target_cpu_utilization}}}],
        },
    }
    return [deployment, service, hpa]


def to_yaml(docs: list[Resource]) -> str:
    try:
        import yaml
    except ImportError:
        raise InvalidInput('Writing YAML needs PyYAML: pip install "modelport[deploy]"') from None
    class _Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:  # shared pieces are written out, not as &anchors
            return True

    return yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False)

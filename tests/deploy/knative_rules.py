"""Knative Serving's admission rules for a revision's pod, written out as checks (no cluster needed).

Read from knative/serving (pkg/apis/serving/fieldmask.go: the PodSpec, Container, SecurityContext,
Volume and Probe fields a revision may carry; pkg/apis/serving/k8s_validation.go: one container port
named h2c/http1/"" over TCP, reserved ports, env names, mount paths and container names, probe ports
that match the container port) at commit 98e5ef90 (2026-08-21), with the feature flags at their defaults
(pkg/apis/config/features.go: pod securityContext off, emptyDir on). KServe in Serverless mode turns an
InferenceService component into a Knative Service's revision template, so these are its rules too.
"""

from __future__ import annotations

import posixpath
from typing import Any

# fieldmask.go PodSpecMask, with the default feature flags (gated fields are off by default but for emptyDir).
POD_FIELDS = {"serviceAccountName", "containers", "volumes", "imagePullSecrets", "enableServiceLinks"}
# fieldmask.go ContainerMask: no lifecycle, no stdin/tty, no resizePolicy, ...
CONTAINER_FIELDS = {
    "name", "args", "command", "env", "workingDir", "envFrom", "image", "imagePullPolicy", "livenessProbe", "ports",
    "readinessProbe", "resources", "securityContext", "startupProbe", "terminationMessagePath",
    "terminationMessagePolicy", "volumeMounts",
}
SECURITY_FIELDS = {
    "capabilities", "readOnlyRootFilesystem", "runAsUser", "runAsGroup", "runAsNonRoot", "allowPrivilegeEscalation",
    "seccompProfile", "privileged",
}
VOLUME_SOURCES = {"secret", "configMap", "projected", "emptyDir"}
PORT_FIELDS = {"containerPort", "name", "protocol"}
PROBE_FIELDS = {"httpGet", "tcpSocket", "exec", "grpc", "initialDelaySeconds", "timeoutSeconds", "periodSeconds",
                "successThreshold", "failureThreshold", "terminationGracePeriodSeconds"}
# k8s_validation.go: queue-proxy's ports (8012, 8013, 8022, 9090, 9091) and the profiling port (8008).
RESERVED_PORTS = {8012, 8013, 8022, 9090, 9091, 8008}
RESERVED_ENV = {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}
RESERVED_PATHS = {"/", "/dev", "/dev/log"}
PORT_NAMES = {"h2c", "http1", ""}
# KServe's ComponentExtensionSpec: the InferenceService component fields that are not the pod's.
KSERVE_COMPONENT_FIELDS = {
    "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "scaleMetricType", "containerConcurrency", "timeout",
    "canaryTrafficPercent", "labels", "annotations", "deploymentStrategy", "autoScaling", "logger", "batcher",
}


def pod_violations(pod: dict[str, Any], where: str = "") -> list[str]:
    """What Knative's webhook would refuse in a revision's pod spec, one line each (empty: it applies)."""
    out = [f"{where}{key}: not allowed in a Knative revision" for key in sorted(set(pod) - POD_FIELDS)]
    ports = []
    for i, c in enumerate(pod.get("containers", [])):
        at = f"{where}containers[{i}]."
        out += [f"{at}{key}: not allowed" for key in sorted(set(c) - CONTAINER_FIELDS)]
        if c.get("name") == "queue-proxy":
            out.append(f"{at}name: queue-proxy is reserved")
        out += [f"{at}securityContext.{k}: not allowed" for k in sorted(set(c.get("securityContext", {})) - SECURITY_FIELDS)]
        caps = c.get("securityContext", {}).get("capabilities", {})
        if caps.get("add"):
            out.append(f"{at}securityContext.capabilities.add: not allowed by default")
        out += [f"{at}env {e['name']}: reserved" for e in c.get("env", []) if e.get("name") in RESERVED_ENV]
        out += [f"{at}volumeMounts {m['mountPath']}: reserved path" for m in c.get("volumeMounts", [])
                if posixpath.normpath(m.get("mountPath", "")) in RESERVED_PATHS]
        for p in c.get("ports", []):
            ports.append((at, p))
            out += [f"{at}ports.{k}: not allowed" for k in sorted(set(p) - PORT_FIELDS)]
            if p.get("name", "") not in PORT_NAMES:
                out.append(f"{at}ports: name {p.get('name')!r} must be empty, h2c or http1")
            if p.get("protocol", "TCP") != "TCP":
                out.append(f"{at}ports: protocol must be TCP")
            if p.get("containerPort") in RESERVED_PORTS:
                out.append(f"{at}ports: {p['containerPort']} is a reserved port")
        port = (c.get("ports") or [{}])[0].get("containerPort", 8080)
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if probe in c:
                out += [f"{at}{probe}.{k}: not allowed" for k in sorted(set(c[probe]) - PROBE_FIELDS)]
                handler = c[probe].get("httpGet") or c[probe].get("tcpSocket") or {}
                if "port" in handler and handler["port"] != port:
                    out.append(f"{at}{probe}: port {handler['port']} must match the container port {port}")
    if len(ports) > 1:
        out.append(f"{where}ports: more than one container port is set (only one is allowed across all containers)")
    for i, v in enumerate(pod.get("volumes", [])):
        sources = set(v) - {"name"}
        out += [f"{where}volumes[{i}].{s}: volume source not allowed" for s in sorted(sources - VOLUME_SOURCES)]
    return out


def component_violations(component: dict[str, Any], where: str) -> list[str]:
    """An InferenceService component (predictor, transformer) as Knative sees it in Serverless mode."""
    pod = {k: v for k, v in component.items() if k not in KSERVE_COMPONENT_FIELDS}
    return pod_violations(pod, where)


def runtime_violations(runtime: dict[str, Any]) -> list[str]:
    """A (Cluster)ServingRuntime's containers and volumes merge into the predictor's pod: the same rules."""
    spec = runtime["spec"]
    return pod_violations({"containers": spec["containers"], "volumes": spec.get("volumes", [])}, runtime["metadata"]["name"] + ": ")

"""Checks KServe resources against the KServe SDK's own OpenAPI models; run with the kserve peer's Python.

Reads a JSON list of resources on stdin; prints one problem per line (nothing when all is well). Strict: every
key must be a field of the model at that place, every value of the declared type, and each SDK model's own
constructor (required fields, enumerations) must accept it.
"""

import json
import re
import sys

import kubernetes.client.models as k8s_models
import kserve.models as kserve_models

KINDS = {
    ("serving.kserve.io/v1beta1", "InferenceService"): "V1beta1InferenceService",
    ("serving.kserve.io/v1alpha1", "ServingRuntime"): "V1alpha1ServingRuntime",
    ("serving.kserve.io/v1alpha1", "ClusterServingRuntime"): "V1alpha1ClusterServingRuntime",
}
PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object, "datetime": str}


def model_class(name):
    return getattr(kserve_models, name, None) or getattr(k8s_models, name)


def check(value, type_name, path, problems):
    type_name = type_name.strip()
    m = re.fullmatch(r"(?:list|List)\[(.+)\]", type_name)
    if m:
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            check(item, m.group(1), f"{path}[{i}]", problems)
        return
    m = re.fullmatch(r"(?:dict|Dict)\((?:str|\w+), (.+)\)|Dict\[str, (.+)\]", type_name)
    if m:
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a map, got {type(value).__name__}")
            return
        for key, item in value.items():
            check(item, m.group(1) or m.group(2), f"{path}.{key}", problems)
        return
    if type_name in PRIMITIVES:
        if type_name == "str" and isinstance(value, (int, float)) and path.endswith(("cpu", "memory", "nvidia.com/gpu")):
            return
        if not isinstance(value, PRIMITIVES[type_name]) or (type_name == "int" and isinstance(value, bool)):
            problems.append(f"{path}: expected {type_name}, got {value!r}")
        return
    cls = model_class(type_name)
    if not isinstance(value, dict):
        if cls.__name__ in ("IntOrString",) or type_name in ("IntOrString",):
            return
        problems.append(f"{path}: expected an object ({type_name}), got {value!r}")
        return
    by_json = {json_name: attr for attr, json_name in cls.attribute_map.items()}
    for key, item in value.items():
        if key not in by_json:
            problems.append(f"{path}.{key}: not a field of {type_name}")
            continue
        check(item, cls.openapi_types[by_json[key]], f"{path}.{key}", problems)
    try:  # the SDK model's own constructor checks required fields and enumerations
        cls(**{by_json[k]: v for k, v in value.items() if k in by_json})
    except (ValueError, TypeError) as exc:
        problems.append(f"{path}: the SDK's {type_name} refuses it: {exc}")


def main():
    docs = json.load(sys.stdin)
    problems = []
    for doc in docs:
        kind = KINDS.get((doc.get("apiVersion"), doc.get("kind")))
        if kind is None:
            problems.append(f"unknown KServe kind {doc.get('apiVersion')}/{doc.get('kind')}")
            continue
        check(doc, kind, doc["kind"], problems)
    print("\n".join(problems))


main()

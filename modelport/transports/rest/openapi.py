"""The OpenAPI document of the whole REST surface, and the Swagger UI page that renders it.

The document is built per request from the models the server knows: besides the generic
``/v2/models/{model_name}/...`` routes, every model that declares its inputs gets concrete
``/v2/models/<name>/infer`` and ``/v1/models/<name>:predict`` operations whose request schema and
example follow those declarations (as MLServer's per-model docs do). Swagger UI's static files come
from the ``swagger-ui-bundle`` package and are served by this app: no CDN.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any, Iterable

from ..._version import __version__
from ...doors import REST, Door

_REF = "#/components/schemas/"
_ERROR = {"$ref": _REF + "Error"}
_DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
              "FP16", "FP32", "FP64", "BYTES"]
# Names a model may be looked up by in a URL path (no separators, no dot segments).
_NAME_PATTERN = "^[A-Za-z0-9_][A-Za-z0-9_.-]*$"


def _ref(name: str) -> dict:
    return {"$ref": _REF + name}


# A traffic policy as the routing admin calls answer it.
_POLICY_EXAMPLE = {"traffic": {"2": 90, "3": 10}, "sticky": "x-user-id", "history": 1}


def _resp(description: str, schema: dict | None = None, content_type: str = "application/json",
          example: Any = None) -> dict:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        media: dict[str, Any] = {"schema": schema}
        if example is not None:
            media["example"] = example
        out["content"] = {content_type: media}
    return out


_ERROR_TEXT = {400: "Invalid input", 404: "Model or version not found", 413: "Body too large",
               429: "Model overloaded", 500: "Model raised an error", 501: "Not implemented",
               503: "Not ready", 504: "Deadline exceeded"}


def _errors(*codes: int) -> dict:
    return {str(c): _resp(_ERROR_TEXT[c], _ERROR, example={"error": _ERROR_TEXT[c]}) for c in codes}


def _name_param(examples: list[str]) -> dict:
    param: dict[str, Any] = {"name": "model_name", "in": "path", "required": True,
                             "schema": {"type": "string", "pattern": _NAME_PATTERN, "maxLength": 200}}
    if examples:
        param["examples"] = {n: {"value": n} for n in examples}
    return param


_VERSION = {"name": "model_version", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": _NAME_PATTERN, "maxLength": 50}, "example": "1"}
_HEADER_LENGTH = {"name": "Inference-Header-Content-Length", "in": "header", "required": False,
                  "description": "Length of the JSON header when the body carries binary tensor data",
                  "schema": {"type": "integer", "minimum": 0}}


# -- per-model schemas and examples ---------------------------------------------------------------
def _item_schema(datatype: str) -> dict:
    if datatype == "BYTES":
        return {"type": "string"}
    if datatype == "BOOL":
        return {"type": "boolean"}
    if datatype.startswith(("INT", "UINT")):
        return {"type": "integer"}
    return {"type": "number"}


def _example_value(datatype: str, i: int) -> Any:
    if datatype == "BYTES":
        return "I love this"
    if datatype == "BOOL":
        return i % 2 == 0
    if datatype.startswith(("INT", "UINT")):
        return i % 3
    return round(0.5 + 0.25 * (i % 8), 2)


def _example_shape(shape: list) -> list[int]:
    return [1 if (d is None or d < 0) else int(d) for d in shape] or [1]


def _example_tensor(spec: dict) -> dict:
    shape = _example_shape(list(spec.get("shape") or [-1]))
    count = 1
    for d in shape:
        count *= d
    datatype = spec.get("datatype", "FP32")
    return {"name": spec["name"], "shape": shape, "datatype": datatype,
            "data": [_example_value(datatype, i) for i in range(min(count, 64))]}


def _example_rows(spec: dict) -> list:
    """V1 ``instances`` for one input: its example tensor split along the first dimension."""
    tensor = _example_tensor(spec)
    shape, data = tensor["shape"], tensor["data"]
    if len(shape) <= 1:
        return data
    width = len(data) // shape[0] if shape[0] else 0
    return [data[i * width:(i + 1) * width] for i in range(shape[0])]


def _input_schema(spec: dict) -> dict:
    shape = list(spec.get("shape") or [])
    shape_schema: dict[str, Any] = {"type": "array", "items": {"type": "integer", "minimum": 0}}
    if shape:
        shape_schema.update(minItems=len(shape), maxItems=len(shape))
    datatype = spec.get("datatype", "FP32")
    return {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string", "enum": [spec["name"]]},
            "shape": shape_schema,
            "datatype": {"type": "string", "enum": [datatype]},
            "parameters": {"type": "object"},
            "data": {"type": "array", "items": _item_schema(datatype),
                     "description": f"{datatype} values, row-major; declared shape {shape}"},
        },
    }


def _model_request_schema(meta: dict) -> dict:
    inputs = [i for i in meta.get("inputs") or [] if isinstance(i, dict) and i.get("name")]
    items = _input_schema(inputs[0]) if len(inputs) == 1 else {"anyOf": [_input_schema(i) for i in inputs]}
    return {"type": "object", "required": ["inputs"], "properties": {
        "id": {"type": "string"}, "parameters": _ref("Parameters"),
        "inputs": {"type": "array", "items": items, "minItems": 1, "maxItems": len(inputs)},
        "outputs": {"type": "array", "items": _ref("RequestedOutput")}}}


def _model_paths(meta: dict) -> dict:
    name = meta["name"]
    inputs = [i for i in meta.get("inputs") or [] if isinstance(i, dict) and i.get("name")]
    if not inputs:
        return {}
    example = {"inputs": [_example_tensor(i) for i in inputs]}
    outputs = [o for o in meta.get("outputs") or [] if isinstance(o, dict) and o.get("name")]
    response_example = {"model_name": name, "outputs": [_example_tensor(o) for o in outputs or inputs]}
    described = ", ".join(f"{i['name']} {i.get('datatype', '?')} {i.get('shape', '?')}" for i in inputs)
    paths = {
        f"/v2/models/{name}/infer": {"post": {
            "tags": [f"model: {name}"], "summary": f"Inference on {name} ({described})",
            "operationId": f"infer_{name}",
            "parameters": [_HEADER_LENGTH],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": _model_request_schema(meta), "example": example}}},
            "responses": {"200": _resp("Inference response", _ref("InferenceResponse"), example=response_example),
                          **_errors(400, 404, 413, 429, 500, 503, 504)}}},
    }
    if len(inputs) == 1:
        paths[f"/v1/models/{name}:predict"] = {"post": {
            "tags": [f"model: {name}"], "summary": f"V1 predict on {name}", "operationId": f"predict_v1_{name}",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": _ref("V1Request"), "example": {"instances": _example_rows(inputs[0])}}}},
            "responses": {"200": _resp("Predictions", _ref("V1Response"), example={"predictions": _example_rows(
                (outputs or inputs)[0])}), **_errors(400, 404, 413, 429, 500, 503, 504)}}}
    return paths


# -- the generic surface -------------------------------------------------------------------------
def _generic_model_paths(prefix: str, params: list, tag: str) -> dict:
    infer_body = {
        "required": True,
        "description": "JSON, or (application/octet-stream) a JSON header followed by binary tensors whose "
                       "header length is in Inference-Header-Content-Length",
        "content": {
            "application/json": {"schema": _ref("InferenceRequest"), "example": {
                "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
    return {
        prefix: {"get": {"tags": [tag], "summary": "Model metadata", "parameters": params, "responses": {
            "200": _resp("Metadata", _ref("ModelMetadata"), example={
                "name": "iris", "versions": [], "platform": "sklearn",
                "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}],
                "outputs": [{"name": "output-0", "datatype": "INT64", "shape": [-1]}]}),
            **_errors(404)}}},
        prefix + "/ready": {"get": {"tags": [tag], "summary": "Model readiness", "parameters": params, "responses": {
            "200": _resp("Ready", _ref("ModelReady"), example={"name": "iris", "ready": True}),
            "503": _resp("Known but not ready (loading, failed or unloaded)", _ref("ModelReady"),
                         example={"name": "iris", "ready": False}),
            **_errors(404)}}},
        prefix + "/infer": {"post": {
            "tags": [tag], "summary": "Inference (Open Inference Protocol)",
            "parameters": params + [_HEADER_LENGTH],
            "requestBody": infer_body,
            "responses": {"200": _resp("Inference response", _ref("InferenceResponse"), example={
                "model_name": "iris", "outputs": [{"name": "output-0", "shape": [1], "datatype": "INT64", "data": [0]}]}),
                **_errors(400, 404, 413, 429, 500, 503, 504)}}},
    }


def _schemas() -> dict:
    scalar_or_nested = {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"},
                                  {"type": "array", "items": {}}]}
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": _DATATYPES},
            "parameters": _ref("Parameters"),
            "data": {"type": "array", "items": scalar_or_nested,
                     "description": "Tensor data, flat or nested, row-major; absent when sent as binary data"},
        },
    }
    io_meta = {"type": "object", "required": ["name", "datatype", "shape"], "properties": {
        "name": {"type": "string"}, "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}}, "parameters": _ref("Parameters")}}
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        "Parameters": {"type": "object", "additionalProperties": True},
        "Live": {"type": "object", "required": ["live"], "properties": {"live": {"type": "boolean"}}},
        "Ready": {"type": "object", "required": ["ready"], "properties": {"ready": {"type": "boolean"}}},
        "ModelReady": {"type": "object", "required": ["name", "ready"], "properties": {
            "name": {"type": "string"}, "ready": {"type": "boolean"}}},
        "Tensor": tensor,
        "RequestedOutput": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"}, "parameters": _ref("Parameters")}},
        "InferenceRequest": {"type": "object", "required": ["inputs"], "properties": {
            "id": {"type": "string"}, "parameters": _ref("Parameters"),
            "inputs": {"type": "array", "items": _ref("Tensor")},
            "outputs": {"type": "array", "items": _ref("RequestedOutput")}}},
        "InferenceResponse": {"type": "object", "required": ["model_name", "outputs"], "properties": {
            "model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
            "parameters": _ref("Parameters"),
            "outputs": {"type": "array", "items": _ref("Tensor")}}},
        "TensorMetadata": io_meta,
        "ModelMetadata": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": _ref("TensorMetadata")},
            "outputs": {"type": "array", "items": _ref("TensorMetadata")}}},
        "ServerMetadata": {"type": "object", "required": ["name", "version", "extensions"], "properties": {
            "name": {"type": "string"}, "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}}}},
        "RepositoryIndexRequest": {"type": "object", "properties": {"ready": {
            "type": "boolean", "description": "Only the models that are ready"}}},
        "RepositoryIndex": {"type": "array", "items": {"type": "object", "required": ["name", "state"], "properties": {
            "name": {"type": "string"}, "version": {"type": "string"},
            "state": {"type": "string", "enum": ["REGISTERED", "LOADING", "READY", "UNLOADING", "UNAVAILABLE", "FAILED", "EVICTED"]},
            "reason": {"type": "string"},
            # With max_loaded_models or memory_budget (residency): memory measured at the last load.
            "memory": {"type": "object", "properties": {"bytes": {"type": "integer"}, "source": {
                "type": "string", "enum": ["model", "runtime", "rss"], "nullable": True}}},
            "pinned": {"type": "boolean"}, "loads": {"type": "integer"}, "cold_start_seconds": {"type": "number"}}}},
        "V1Request": {"type": "object", "properties": {
            "instances": {"type": "array", "items": {}, "description": "One item per row"},
            "inputs": {"description": "Alternative to instances"}}},
        "V1Response": {"type": "object", "properties": {"predictions": {"type": "array", "items": {}}}},
        "V1Models": {"type": "object", "required": ["models"], "properties": {
            "models": {"type": "array", "items": {"type": "string"}}}},
    }


def models_metadata(repository: Any) -> list[dict]:
    """Metadata of every model the repository holds an instance of (loaded or not), for the document."""
    out, seen = [], set()
    for entry in repository.entries():
        if entry.model is None or entry.name in seen:
            continue
        seen.add(entry.name)
        try:
            out.append(entry.model.metadata())
        except Exception:  # noqa: BLE001 - a model's metadata hook must not break the docs
            continue
    return sorted(out, key=lambda m: m["name"])


_TAGS = {"v2": "Open Inference Protocol (V2)", "v1": "KServe V1", "repository": "Model repository",
         "routing": "Model repository", "openai": "OpenAI-compatible", "ui": "Console", "shm": "System shared memory"}
_PARAMS = {"model_version": _VERSION,
           "asset": {"name": "asset", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 200}},
           "region_name": {"name": "region_name", "in": "path", "required": True, "schema": {"type": "string"}}}


_V2_EXAMPLE = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
_GENERATE_EXAMPLE = {"text_input": "Hello", "parameters": {"max_tokens": 8}}
_STATS_EXAMPLE = {"model_stats": [{"name": "iris", "version": "", "inference_count": 1}]}
# Request and 200 examples of the doors documented from their declaration alone (by the door's base name).
_REQUESTS = {
    "v2.infer_stream": _V2_EXAMPLE, "v2.generate": _GENERATE_EXAMPLE, "v2.generate_stream": _GENERATE_EXAMPLE,
    "openai.completions": {"model": "my-llm", "prompt": "Say hello", "max_tokens": 8},
    "openai.chat_completions": {"model": "my-llm", "messages": [{"role": "user", "content": "Say hello"}]},
    "openai.embeddings": {"model": "my-encoder", "input": "Say hello"},
    "shm.register": {"key": "/my_region", "offset": 0, "byte_size": 1048576},
}
_ANSWERS = {
    "v2.stats": _STATS_EXAMPLE, "v2.model_stats": _STATS_EXAMPLE,
    "v2.model_health": {"status": "healthy", "reasons": [], "requests": 10, "errors": 0, "error_rate": 0.0,
                        "latency_ms": {"p50": 1.2, "p99": 3.4}, "window_seconds": 60},
    "v2.generate": {"model_name": "my-llm", "text_output": "Hello there"},
    "openai.models": {"object": "list", "data": [{"id": "my-llm", "object": "model", "owned_by": "modelport"}]},
    "openai.model": {"id": "my-llm", "object": "model", "owned_by": "modelport"},
    "openai.completions": {"id": "cmpl-1", "object": "text_completion", "model": "my-llm",
                           "choices": [{"index": 0, "text": "Hello", "finish_reason": "stop"}]},
    "openai.chat_completions": {"id": "chatcmpl-1", "object": "chat.completion", "model": "my-llm",
                                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"},
                                             "finish_reason": "stop"}]},
    "openai.embeddings": {"object": "list", "model": "my-encoder", "data": [{"object": "embedding", "index": 0,
                                                                            "embedding": [0.1, 0.2]}]},
    "openapi": {"openapi": "3.0.3", "paths": {}},
    "ui.models": {"server": {}, "models": []}, "ui.stats": {"time": 0, "metrics": True, "models": {}},
}
_OPENAI_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["message"]}}}
# Doors that answer something other than JSON.
# MLflow answers /ping and /version with text labelled application/json, as MLflow's scoring server does.
_MEDIA = {"docs": "text/html", "ui.page": "text/html", "docs.asset": "*/*", "ui.static": "*/*",
          "mlflow.ping": "*/*", "mlflow.health": "*/*", "mlflow.version": "*/*"}


def _door_operation(door: Door, name: dict) -> dict[str, Any]:
    """An operation for a declared door that has no hand-written one: its summary, parameters, examples."""
    base = door.name.removesuffix(".version").removesuffix(".v1")
    params = [name if p == "model_name" else _PARAMS[p] for p in _path_params(door.path)]
    if base in _MEDIA:
        ok = _resp("OK", {"type": "string"}, _MEDIA[base])
    elif door.stream:  # server-sent events, or one JSON answer (OpenAI without "stream": true)
        ok = _resp("Server-sent events (data: one JSON document per event)", {}, "text/event-stream")
        if base in _ANSWERS:
            ok["content"]["application/json"] = {"schema": {"type": "object"}, "example": _ANSWERS[base]}
    else:
        ok = _resp("OK", {"type": "object"}, example=_ANSWERS.get(base, {}))
    op: dict[str, Any] = {"tags": [_TAGS.get(door.name.partition(".")[0], "Server")], "summary": door.summary,
                          "operationId": door.name.replace(".", "_"),
                          "responses": {"200": ok, **_errors(*((404, 501, 503) if door.model else (404,)))}}
    if params:
        op["parameters"] = params
    if door.method == "POST":
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"type": "object"}, "example": _REQUESTS.get(base, {})}}}
        op["responses"].update(_errors(400, 413, 429, 500, 501, 503))
    if base.startswith("openai."):  # OpenAI-shaped errors: {"error": {"message", "type", "param", "code"}}
        for code, response in op["responses"].items():
            if code != "200":
                response["content"] = {"application/json": {"schema": _OPENAI_ERROR, "example": {"error": {
                    "message": response["description"], "type": "invalid_request_error", "param": None, "code": None}}}}
    return op


def _path_params(path: str) -> list[str]:
    return [part.partition("}")[0] for part in path.split("{")[1:]]


def openapi_document(models: Iterable[dict] = (), doors: Iterable[Door] = REST) -> dict[str, Any]:
    """The document of every declared REST door (``doors``: the served ones, mounts included), each
    operation marked with its kind (``x-modelport-kind``); ``models`` (metadata documents) add
    per-model operations and name examples."""
    models = [m for m in models if isinstance(m, dict) and isinstance(m.get("name"), str)]
    names = [m["name"] for m in models]
    name = _name_param(names)
    v2, v1, repo, server = "Open Inference Protocol (V2)", "KServe V1", "Model repository", "Server"
    paths: dict[str, Any] = {
        "/v2/health/live": {"get": {"tags": [server], "summary": "Server liveness", "responses": {
            "200": _resp("Live", _ref("Live"), example={"live": True})}}},
        "/v2/health/ready": {"get": {"tags": [server], "summary": "Server readiness: every model it serves is ready",
                                     "responses": {"200": _resp("Ready", _ref("Ready"), example={"ready": True}),
                                                   "503": _resp("Not ready", _ref("Ready"), example={"ready": False})}}},
        "/v2": {"get": {"tags": [server], "summary": "Server metadata", "responses": {"200": _resp(
            "Metadata", _ref("ServerMetadata"),
            example={"name": "modelport", "version": __version__, "extensions": ["model_repository"]})}}},
        **_generic_model_paths("/v2/models/{model_name}", [name], v2),
        **_generic_model_paths("/v2/models/{model_name}/versions/{model_version}", [name, _VERSION], v2),
        "/v1/models": {"get": {"tags": [v1], "summary": "V1 model list", "responses": {
            "200": _resp("Models", _ref("V1Models"), example={"models": names or ["iris"]})}}},
        "/v1/models/{model_name}": {"get": {"tags": [v1], "summary": "V1 model status", "parameters": [name],
            "responses": {"200": _resp("Status", _ref("ModelReady"), example={"name": "iris", "ready": True}),
                          **_errors(404)}}},
        "/v1/models/{model_name}:predict": {"post": {"tags": [v1], "summary": "V1 predict", "parameters": [name],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": _ref("V1Request"), "example": {"instances": [[5.1, 3.5, 1.4, 0.2]]}}}},
            "responses": {"200": _resp("Predictions", _ref("V1Response"), example={"predictions": [0]}),
                          **_errors(400, 404, 413, 429, 500, 503, 504)}}},
        "/v1/models/{model_name}:explain": {"post": {"tags": [v1], "summary": "V1 explain", "parameters": [name],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": _ref("V1Request"), "example": {"instances": [[5.1, 3.5, 1.4, 0.2]]}}}},
            "responses": {"200": _resp("Explanation (whatever the model's explain hook returns)",
                                       {"type": "object"}, example={"explanations": [[0.1, -0.2, 0.4, 0.0]]}),
                          **_errors(400, 404, 413, 429, 500, 501, 503, 504)}}},
        "/": {"get": {"tags": [server], "summary": "V1 liveness", "responses": {"200": _resp(
            "Alive", {"type": "object", "properties": {"status": {"type": "string"}}}, example={"status": "alive"})}}},
        "/metrics": {"get": {"tags": [server], "summary": "Prometheus metrics",
                             "responses": {"200": _resp("Metrics", {"type": "string"}, "text/plain"), **_errors(404)}}},
    }
    for meta in models:
        paths.update(_model_paths(meta))
    # Last: a test tool walking the document in order loads and unloads models after it has used them.
    paths.update({
        # Routing: traffic policies (README "Rolling out models").
        "/v2/repository/models/{model_name}/traffic": {"post": {"tags": [repo],
            "summary": "Show (no body) or set a model's traffic policy over its versions", "parameters": [name],
            "requestBody": {"required": False, "content": {"application/json": {"schema": {"type": "object"},
                "example": {"traffic": {"2": 90, "3": 10}, "sticky": "x-user-id"}}}},
            "responses": {"200": _resp("The policy", {"type": "object"}, example=_POLICY_EXAMPLE), **_errors(400, 404, 503)}}},
        "/v2/repository/models/{model_name}/promote": {"post": {"tags": [repo],
            "summary": "Send all traffic that names no version to one loaded version (blue-green)", "parameters": [name],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["version"], "properties": {"version": {"type": "string"}}},
                "example": {"version": "3"}}}},
            "responses": {"200": _resp("The policy", {"type": "object"}, example=_POLICY_EXAMPLE), **_errors(400, 404, 503)}}},
        "/v2/repository/models/{model_name}/rollback": {"post": {"tags": [repo],
            "summary": "Restore the traffic policy before the last change", "parameters": [name],
            "responses": {"200": _resp("The policy", {"type": "object"}, example=_POLICY_EXAMPLE), **_errors(400, 404, 503)}}},
        "/v2/repository/index": {"post": {"tags": [repo], "summary": "Every model in the repository, with its state",
            "requestBody": {"required": False, "content": {"application/json": {
                "schema": _ref("RepositoryIndexRequest"), "example": {"ready": True}}}},
            "responses": {"200": _resp("Index", _ref("RepositoryIndex"),
                                       example=[{"name": "iris", "state": "READY", "reason": ""}]),
                          **_errors(400)}}},
        "/v2/repository/models/{model_name}/load": {"post": {"tags": [repo], "summary": "Load (or reload) a model",
            "parameters": [name], "responses": {"200": _resp("Loaded"), **_errors(404, 500)}}},
        "/v2/repository/models/{model_name}/unload": {"post": {"tags": [repo],
            "summary": "Unload a model after its in-flight requests finish",
            "parameters": [name], "responses": {"200": _resp("Unloaded"), **_errors(404)}}},
    })
    for door in doors:  # every served door, documented; the hand-written operations above keep their detail
        operation = paths.setdefault(door.path, {}).setdefault(door.method.lower(), _door_operation(door, name))
        operation["x-modelport-kind"] = door.kind
        operation.setdefault("summary", door.summary)
    # Admin operations last: a test tool walking the document in order unloads models after using them.
    paths = dict(sorted(paths.items(), key=lambda item: item[0].startswith("/v2/repository/")))
    return {
        "openapi": "3.0.3",
        "info": {"title": "modelport", "version": __version__,
                 "description": "Open Inference Protocol (V2), KServe V1 and OpenAI-compatible REST endpoints. "
                                "Each model that declares its inputs has its own operations, under its tag. "
                                "x-modelport-kind says what an operation needs: public (no key unless "
                                "auth_health/auth_metrics), read and infer (an infer key), admin (an admin key)."},
        "tags": [{"name": t} for t in dict.fromkeys([server, v2, v1, repo, *_TAGS.values()])]
        + [{"name": f"model: {n}"} for n in names],
        "paths": paths,
        "components": {"schemas": _schemas()},
    }


# -- the docs page ---------------------------------------------------------------------------------
def _swagger_dir() -> Path | None:
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    return Path(str(swagger_ui_path))


_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png")

SWAGGER_HTML = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>modelport API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs/swagger-ui.css"><link rel="icon" href="/docs/favicon-32x32.png">
<style>body{margin:0} .topbar-note{font:14px system-ui,sans-serif;padding:.5rem 1rem;background:#1b1b1b;color:#eee}
.topbar-note a{color:#9cf}</style></head><body>
<div class="topbar-note">modelport API &middot; <a href="/openapi.json">/openapi.json</a> &middot; <a href="/ui">console</a></div>
<div id="swagger-ui"><noscript><p style="padding:1rem">This page needs JavaScript; the document itself is at
<a href="/openapi.json">/openapi.json</a>.</p></noscript></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body></html>
"""

_INIT_JS = b"""window.ui = SwaggerUIBundle({url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true,
  tryItOutEnabled: true, displayRequestDuration: true, defaultModelsExpandDepth: 0});
"""

# When swagger-ui-bundle is not installed: a plain list of the routes, still no CDN.
PLAIN_HTML = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>modelport API</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
code{background:#f3f3f3;padding:.1rem .3rem}li{margin:.3rem 0}.m{display:inline-block;width:4rem;font-weight:bold}</style>
</head><body><h1>modelport API</h1>
<p>The machine-readable document is at <a href="/openapi.json"><code>/openapi.json</code></a>.
Install <code>swagger-ui-bundle</code> for the interactive page.</p>
<ul id="paths"></ul>
<script>
fetch('/openapi.json').then(r => r.json()).then(doc => {
  const ul = document.getElementById('paths');
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const li = document.createElement('li');
      li.innerHTML = '<span class="m">' + method.toUpperCase() + '</span><code></code> ';
      li.querySelector('code').textContent = path;
      li.appendChild(document.createTextNode(op.summary || ''));
      ul.appendChild(li);
    }
  }
});
</script></body></html>
"""


def docs_page(path: str) -> tuple[int, bytes, bytes, list] | None:
    """``/docs`` and its assets as (status, body, content type, headers); None: not a docs path."""
    swagger = _swagger_dir()
    if path in ("/docs", "/docs/"):
        return 200, (SWAGGER_HTML if swagger else PLAIN_HTML), b"text/html; charset=utf-8", []
    if swagger is None or not path.startswith("/docs/"):
        return None
    name = path[len("/docs/"):]
    if name == "init.js":
        return 200, _INIT_JS, b"text/javascript; charset=utf-8", []
    if name not in _ASSETS:
        return None
    body = (swagger / name).read_bytes()
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind.endswith("javascript"):
        kind += "; charset=utf-8"
    return 200, body, kind.encode(), [(b"cache-control", b"public, max-age=86400")]

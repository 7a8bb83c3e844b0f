"""The OpenAPI document of the whole REST surface, and a self-contained docs page that renders it."""

from __future__ import annotations

import functools
from typing import Any

from ..._version import __version__

_ERROR = {"$ref": "#/components/schemas/Error"}


def _resp(description: str, schema: dict | None = None, content_type: str = "application/json") -> dict:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {content_type: {"schema": schema}}
    return out


def _errors(*codes: int) -> dict:
    text = {400: "Invalid input", 404: "Model or version not found", 413: "Body too large",
            429: "Model overloaded", 500: "Model raised an error", 501: "Not implemented",
            503: "Not ready", 504: "Deadline exceeded"}
    return {str(c): _resp(text[c], _ERROR) for c in codes}


_NAME = {"name": "model_name", "in": "path", "required": True, "schema": {"type": "string"}}
_VERSION = {"name": "model_version", "in": "path", "required": True, "schema": {"type": "string"}}


def _model_paths(prefix: str, params: list) -> dict:
    infer_body = {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/InferenceRequest"}},
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": "JSON header followed by binary tensors; see Inference-Header-Content-Length",
            },
        },
    }
    return {
        prefix: {"get": {"summary": "Model metadata", "parameters": params, "responses": {
            "200": _resp("Metadata", {"$ref": "#/components/schemas/ModelMetadata"}), **_errors(404)}}},
        prefix + "/ready": {"get": {"summary": "Model readiness", "parameters": params, "responses": {
            "200": _resp("Ready", {"$ref": "#/components/schemas/Ready"}), **_errors(404, 503)}}},
        prefix + "/infer": {"post": {
            "summary": "Inference (Open Inference Protocol)",
            "parameters": params + [{"name": "Inference-Header-Content-Length", "in": "header", "required": False,
                                     "schema": {"type": "integer"}}],
            "requestBody": infer_body,
            "responses": {"200": _resp("Inference response", {"$ref": "#/components/schemas/InferenceResponse"}),
                          **_errors(400, 404, 413, 429, 500, 503, 504)}}},
        # Streaming (modelport/streaming.py): one SSE event per response the model yields.
        prefix + "/infer_stream": {"post": {
            "summary": "Streamed inference: one server-sent event per response", "parameters": params,
            "requestBody": infer_body,
            "responses": {"200": _resp("Events, each an InferenceResponse", {"type": "string"}, "text/event-stream"),
                          **_errors(400, 404, 429, 500, 503, 504)}}},
        prefix + "/generate": {"post": {
            "summary": "Triton generate extension: JSON fields in, one flat JSON object out", "parameters": params,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {"200": _resp("Generated", {"type": "object"}), **_errors(400, 404, 500, 503)}}},
        prefix + "/generate_stream": {"post": {
            "summary": "Triton generate extension, streamed as server-sent events", "parameters": params,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {"200": _resp("Events, each a flat JSON object", {"type": "string"}, "text/event-stream"),
                          **_errors(400, 404, 500, 503)}}},
    }


def _openai_paths() -> dict:
    body = {"required": True, "content": {"application/json": {"schema": {"type": "object", "required": ["model"]}}}}
    out: dict[str, Any] = {}
    for prefix in ("/openai/v1", "/v1"):
        for path, summary in (("/completions", "OpenAI completions"), ("/chat/completions", "OpenAI chat completions"),
                              ("/embeddings", "OpenAI embeddings")):
            out[prefix + path] = {"post": {"summary": summary + (" (alias)" if prefix == "/v1" else ""), "requestBody": body,
                                           "responses": {"200": _resp("The object, or SSE chunks ending in data: [DONE] with stream: true",
                                                                      {"type": "object"}), **_errors(400, 404, 500, 503)}}}
    out["/openai/v1/models"] = {"get": {"summary": "OpenAI model list", "responses": {"200": _resp("Models", {"type": "object"})}}}
    return out


@functools.cache
def openapi_document() -> dict[str, Any]:
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                                                    "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"]},
            "parameters": {"type": "object"},
            "data": {"description": "Tensor data, flat or nested, row-major"},
        },
    }
    schemas = {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        "Live": {"type": "object", "properties": {"live": {"type": "boolean"}}},
        "Ready": {"type": "object", "properties": {"ready": {"type": "boolean"}, "name": {"type": "string"}}},
        "Tensor": tensor,
        "InferenceRequest": {"type": "object", "required": ["inputs"], "properties": {
            "id": {"type": "string"}, "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
            "outputs": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"}, "parameters": {"type": "object"}}}}}},
        "InferenceResponse": {"type": "object", "required": ["model_name", "outputs"], "properties": {
            "model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
            "parameters": {"type": "object"},
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}}}},
        "ModelMetadata": {"type": "object", "properties": {
            "name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": {"type": "object"}},
            "outputs": {"type": "array", "items": {"type": "object"}}}},
        "ServerMetadata": {"type": "object", "properties": {
            "name": {"type": "string"}, "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}}}},
        "RepositoryIndex": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "version": {"type": "string"}, "state": {"type": "string"},
            "reason": {"type": "string"}}}},
        "V1Request": {"type": "object", "properties": {"instances": {"type": "array"}, "inputs": {}}},
        "V1Response": {"type": "object", "properties": {"predictions": {}}},
    }
    paths: dict[str, Any] = {
        "/": {"get": {"summary": "V1 liveness", "responses": {"200": _resp("Alive", {"type": "object"})}}},
        "/v2/health/live": {"get": {"summary": "Server liveness", "responses": {"200": _resp("Live", {"$ref": "#/components/schemas/Live"})}}},
        "/v2/health/ready": {"get": {"summary": "Server readiness: every model it serves is ready", "responses": {
            "200": _resp("Ready", {"$ref": "#/components/schemas/Ready"}), "503": _resp("Not ready", {"$ref": "#/components/schemas/Ready"})}}},
        "/v2": {"get": {"summary": "Server metadata", "responses": {"200": _resp("Metadata", {"$ref": "#/components/schemas/ServerMetadata"})}}},
        **_model_paths("/v2/models/{model_name}", [_NAME]),
        **_model_paths("/v2/models/{model_name}/versions/{model_version}", [_NAME, _VERSION]),
        "/v2/repository/index": {"post": {"summary": "Every model in the repository, with its state",
            "requestBody": {"required": False, "content": {"application/json": {"schema": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}},
            "responses": {"200": _resp("Index", {"$ref": "#/components/schemas/RepositoryIndex"})}}},
        "/v2/repository/models/{model_name}/load": {"post": {"summary": "Load (or reload) a model", "parameters": [_NAME],
            "responses": {"200": _resp("Loaded"), **_errors(404, 500)}}},
        "/v2/repository/models/{model_name}/unload": {"post": {"summary": "Unload a model after its in-flight requests finish",
            "parameters": [_NAME], "responses": {"200": _resp("Unloaded"), **_errors(404)}}},
        "/v1/models": {"get": {"summary": "V1 model list", "responses": {"200": _resp("Models", {"type": "object"})}}},
        "/v1/models/{model_name}": {"get": {"summary": "V1 model status", "parameters": [_NAME],
            "responses": {"200": _resp("Status", {"$ref": "#/components/schemas/Ready"}), **_errors(404)}}},
        "/v1/models/{model_name}:predict": {"post": {"summary": "V1 predict", "parameters": [_NAME],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/V1Request"}}}},
            "responses": {"200": _resp("Predictions", {"$ref": "#/components/schemas/V1Response"}), **_errors(400, 404, 413, 500, 503)}}},
        "/v1/models/{model_name}:explain": {"post": {"summary": "V1 explain", "parameters": [_NAME],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/V1Request"}}}},
            "responses": {"200": _resp("Explanation", {"type": "object"}), **_errors(400, 404, 500, 501, 503)}}},
        **_openai_paths(),
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": _resp("Metrics", {"type": "string"}, "text/plain")}}},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "modelport", "version": __version__,
                 "description": "Open Inference Protocol (V2) and KServe V1 REST endpoints."},
        "paths": paths,
        "components": {"schemas": schemas},
    }


DOCS_HTML = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>modelport API</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
code{background:#f3f3f3;padding:.1rem .3rem}li{margin:.3rem 0}.m{display:inline-block;width:4rem;font-weight:bold}</style>
</head><body><h1>modelport API</h1>
<p>The machine-readable document is at <a href="/openapi.json"><code>/openapi.json</code></a>.</p>
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

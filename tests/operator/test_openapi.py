"""The OpenAPI document: valid, complete (schemas and examples on every operation, per-model operations from
declared inputs), rendered by a real Swagger UI page from shipped assets, and true to the server: a bounded,
seeded schemathesis run against a real server finds no 5xx and no response outside the document."""

from __future__ import annotations


import httpx
import pytest

from modelport.repository.entries import build_model
from modelport.settings import load_model_settings
from modelport.cli import EXAMPLES

from ..helpers import server_in_thread


def _examples():
    return [build_model(load_model_settings(EXAMPLES / name / "model-settings.json")) for name in ("iris", "sentiment")]


@pytest.fixture(scope="module")
def served():
    with server_in_thread(_examples(), model_repository=str(EXAMPLES)) as server:
        yield f"http://127.0.0.1:{server.http_port}"


def test_document_validates_and_is_complete(served):
    from openapi_spec_validator import validate

    doc = httpx.get(served + "/openapi.json").json()
    validate(doc)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op.get("summary"), (method, path)
            for status, response in op["responses"].items():
                for media, content in response.get("content", {}).items():
                    assert "schema" in content, (method, path, status)
                    if status == "200" and media == "application/json" and path != "/v2/repository/models/{model_name}/load":
                        assert "example" in content, (method, path, status)
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                assert "example" in body, (method, path)
    # Per-model operations follow the declared inputs.
    iris = doc["paths"]["/v2/models/iris/infer"]["post"]["requestBody"]["content"]["application/json"]
    tensor = iris["schema"]["properties"]["inputs"]["items"]
    assert tensor["properties"]["name"]["enum"] == ["input-0"]
    assert tensor["properties"]["datatype"]["enum"] == ["FP32"]
    assert tensor["properties"]["shape"]["minItems"] == 2
    assert iris["example"]["inputs"][0]["shape"] == [1, 4]
    assert "/v1/models/sentiment:predict" in doc["paths"]
    # The example requests are real requests: the server answers them.
    r = httpx.post(served + "/v2/models/iris/infer", json=iris["example"])
    assert r.status_code == 200, r.text
    sentiment = doc["paths"]["/v2/models/sentiment/infer"]["post"]["requestBody"]["content"]["application/json"]["example"]
    assert httpx.post(served + "/v2/models/sentiment/infer", json=sentiment).status_code == 200
    v1 = doc["paths"]["/v1/models/iris:predict"]["post"]["requestBody"]["content"]["application/json"]["example"]
    assert httpx.post(served + "/v1/models/iris:predict", json=v1).json() == {"predictions": [0]}
    names = doc["paths"]["/v2/models/{model_name}"]["get"]["parameters"][0]["examples"]
    assert set(names) == {"iris", "sentiment"}


def test_docs_page_is_swagger_ui_from_shipped_assets(served):
    page = httpx.get(served + "/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/docs/swagger-ui-bundle.js" in page.text and "cdn" not in page.text.lower()
    for asset, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "text/css"), ("init.js", "javascript")):
        r = httpx.get(f"{served}/docs/{asset}")
        assert r.status_code == 200 and kind in r.headers["content-type"], asset
    assert "SwaggerUIBundle" in httpx.get(served + "/docs/swagger-ui-bundle.js").text
    assert httpx.get(served + "/docs/../pyproject.toml").status_code == 404
    assert httpx.get(served + "/docs/index.j2").status_code == 404


def test_schemathesis_finds_no_5xx_and_no_undocumented_response(served):
    import schemathesis
    from schemathesis import GenerationMode
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (content_type_conformance, negative_data_rejection,
                                                   response_schema_conformance, status_code_conformance)

    def no_server_error(ctx, response, case):
        # 501 is the protocol's answer for a model with no explain hook, and for the shared-memory doors
        # while system_shared_memory is off (the default), as Triton answers: documented, not a crash.
        if response.status_code == 501 and (case.path.endswith(":explain") or case.path.startswith("/v2/systemsharedmemory")):
            return None
        return not_a_server_error(ctx, response, case)

    checks = [no_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
              negative_data_rejection]
    schema = schemathesis.openapi.from_dict(httpx.get(served + "/openapi.json").json())
    calls, failures = [], []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in ("/ping", "/health", "/version"):
            continue  # MLflow's text labelled application/json, as MLflow answers (tests/e2e/test_mlflow.py)
        strategies = [operation.as_strategy(), operation.as_strategy(GenerationMode.NEGATIVE)]
        strategies += operation.get_strategies_from_examples()

        for strategy in strategies:
            @given(case=strategy)
            @settings(max_examples=15, derandomize=True, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def run(case):
                calls.append(operation.label)
                case.call_and_validate(base_url=served, checks=checks, timeout=30)

            try:
                run()
            except Unsatisfiable:  # negative data for an operation that takes no input
                pass
            except Exception as exc:  # noqa: BLE001 - every operation's failure, not only the first
                failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    assert len(calls) >= 200
    # The run loaded and unloaded the examples at random; the server still serves after it.
    httpx.post(served + "/v2/repository/models/iris/load", timeout=30).raise_for_status()
    assert httpx.get(served + "/v2/models/iris/ready").json() == {"name": "iris", "ready": True}


def test_every_declared_route_is_documented_with_its_kind():
    """The document is generated from the door declaration: each served REST door (the console's
    mount included) is an operation carrying its kind, and the whole validates."""
    from openapi_spec_validator import validate

    from modelport import doors

    with server_in_thread(_examples(), model_repository=str(EXAMPLES), enable_ui=True) as server:
        doc = httpx.get(f"http://127.0.0.1:{server.http_port}/openapi.json").json()
    validate(doc)
    for door in [*doors.REST, *doors.CONSOLE, *doors.MLFLOW]:
        operation = doc["paths"].get(door.path, {}).get(door.method.lower())
        assert operation is not None, f"{door.method} {door.path} is served but not documented"
        assert operation["x-modelport-kind"] == door.kind and operation["summary"], door.name
    for path in ("/v2/models/stats", "/v2/models/{model_name}/health", "/v2/models/{model_name}/infer_stream",
                 "/v2/models/{model_name}/generate", "/v2/models/{model_name}/generate_stream",
                 "/v2/models/{model_name}/versions/{model_version}/stats"):
        assert path in doc["paths"], path  # issue 25: /docs lists every served route

"""KServe scripts run as KServe users run them, imports changed to modelport, over real sockets:
the LiftWing transformer -> predictor pair as two ``python model.py --http_port ...`` processes,
a {"rev_id": ...} V1 model, a model's own InvalidInput, and CloudEvents in both modes."""

from __future__ import annotations

import sys

import httpx
import pytest

from .kserve_peer import SCRIPTS, Script, as_modelport, unused_port, modelport_env

MODEL = "enwiki-goodfaith"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kserve-scripts")
    ports = [unused_port() for _ in range(4)]
    predictor = Script(
        sys.executable, as_modelport(SCRIPTS / "predictor.py", tmp),
        "--http_port", str(ports[0]), "--grpc_port", str(ports[1]), "--model_name", MODEL, "--workers", "1",
        "--max_threads", "2", "--enable_docs_url", "true", "--some_flag_kserve_does_not_know", "x",
        env=modelport_env(), log=tmp / "predictor.log",
    )
    # No --predictor_host: the script's own flag sets self.predictor_host, as LiftWing does.
    transformer = Script(
        sys.executable, as_modelport(SCRIPTS / "transformer.py", tmp),
        "--http_port", str(ports[2]), "--grpc_port", str(ports[3]), "--model_name", MODEL,
        "--upstream", f"127.0.0.1:{ports[0]}",
        env=modelport_env(), log=tmp / "transformer.log",
    )
    try:
        urls = {"predictor": f"http://127.0.0.1:{ports[0]}", "transformer": f"http://127.0.0.1:{ports[2]}", "ports": ports}
        predictor.wait_ready(urls["predictor"], MODEL)
        transformer.wait_ready(urls["transformer"], MODEL)
        yield urls, predictor, transformer
    finally:
        transformer.stop()
        predictor.stop()


def test_scripts_listen_where_their_flags_say_and_log_it(pair):
    urls, predictor, _ = pair
    http, grpc = urls["ports"][0], urls["ports"][1]
    out = predictor.output()
    assert f"Listening for HTTP on http://127.0.0.1:{http}" in out
    assert f"Listening for gRPC on 127.0.0.1:{grpc}" in out
    assert httpx.get(f"{urls['predictor']}/docs").status_code == 200  # --enable_docs_url true


def test_rev_id_body_reaches_preprocess_as_sent(pair):
    urls, _, _ = pair
    r = httpx.post(f"{urls['predictor']}/v1/models/{MODEL}:predict", json={"rev_id": 1097728152})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "predictions": [1097728152 % 7 + 1],
        "predictor_received": {"instances": [[1097728152 % 7, 1]], "rev_id": 1097728152},
    }


def test_transformer_with_predictor_host_attribute_forwards(pair):
    urls, _, _ = pair
    r = httpx.post(f"{urls['transformer']}/v1/models/{MODEL}:predict", json={"rev_id": 1097728152}, timeout=30)
    assert r.status_code == 200, r.text
    said = r.json()["predictor_said"]
    assert r.json()["transformed"] is True
    assert said["predictor_received"] == {"instances": [[1097728152 % 7, 1]], "rev_id": 1097728152}


def test_models_own_invalid_input_message_reaches_the_client(pair):
    urls, _, _ = pair
    r = httpx.post(f"{urls['predictor']}/v1/models/strict:predict", json={"foo": 1})
    assert (r.status_code, r.json()) == (400, {"error": "Missing 'instances' field"})
    r = httpx.post(f"{urls['predictor']}/v1/models/strict:predict", json={"instances": [[1], [2]]})
    assert (r.status_code, r.json()) == (200, {"predictions": [2]})


def test_instances_that_is_not_a_list_is_refused(pair):
    urls, _, _ = pair
    r = httpx.post(f"{urls['predictor']}/v1/models/strict:predict", json={"instances": "x"})
    assert (r.status_code, r.json()) == (400, {"error": 'Expected "instances" to be a list'})


def test_instances_is_checked_after_preprocess(pair):
    urls, _, _ = pair
    r = httpx.post(f"{urls['predictor']}/v1/models/split:predict", json={"instances": "a,b"})
    assert (r.status_code, r.json()) == (200, {"predictions": ["a", "b"]})


def test_cloudevent_binary_mode(pair):
    urls, _, _ = pair
    headers = {
        "ce-specversion": "1.0", "ce-id": "req-1", "ce-source": "test", "ce-type": "io.test.request",
        "content-type": "application/json",
    }
    r = httpx.post(f"{urls['predictor']}/v1/models/echo:predict", content=b'{"a": 1}', headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": {"a": 1}}
    assert r.headers["ce-specversion"] == "1.0"
    assert r.headers["ce-source"] == "io.kserve.inference.echo"
    assert r.headers["ce-type"] == "io.kserve.inference.response"
    assert r.headers["ce-id"] and r.headers["ce-id"] != "req-1"
    assert r.headers["ce-time"]
    assert r.headers["content-type"] == "application/json"


def test_cloudevent_structured_mode(pair):
    urls, _, _ = pair
    event = {"specversion": "1.0", "id": "req-2", "source": "test", "type": "io.test.request",
             "time": "2026-12-01T00:00:00Z", "data": {"a": 2}}
    r = httpx.post(
        f"{urls['predictor']}/v1/models/echo:predict", json=event,
        headers={"content-type": "application/cloudevents+json"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/cloudevents+json"
    body = r.json()
    assert body["data"] == {"received": {"a": 2}}
    assert (body["specversion"], body["source"], body["type"]) == ("1.0", "io.kserve.inference.echo", "io.kserve.inference.response")
    assert body["id"] and body["time"]
    assert not any(k.startswith("ce-") for k in r.headers)

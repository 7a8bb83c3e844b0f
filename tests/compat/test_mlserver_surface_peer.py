"""The MLServer surface beyond predict, side by side with MLServer 1.7.1 (issue 21): the same runtime
(``@custom_handler`` endpoints, ``mlserver.register``/``mlserver.log``, ``predict_stream``, an overridden
``metadata()``) served by `mlserver start` (``mlserver`` imports) and by modelport (the copy with
``modelport.mlserver`` imports); the same requests, compared by status and body."""

from __future__ import annotations

import json

import httpx
import pytest

from .test_mlserver_peer import _as_mlserver, _without_empty_parameters, mlserver_serving
from .test_mlserver_surface import RUNTIME, TEXT

pytestmark = [pytest.mark.peer_mlserver, pytest.mark.timeout(1200)]


def _talker(root):
    """A model folder holding the talker runtime, with modelport.mlserver imports (the migrated copy)."""
    (root / "talker").mkdir(parents=True)
    (root / "talker" / "talker_runtime.py").write_text(RUNTIME)
    (root / "talker" / "model-settings.json").write_text(
        json.dumps({"name": "talker", "implementation": "talker_runtime.Talker"}))
    return root


@pytest.fixture(scope="module")
def peer(tmp_path_factory):
    folder = _talker(tmp_path_factory.mktemp("mlserver-talker") / "models")
    _as_mlserver(folder)
    with mlserver_serving(folder) as (url, _, metrics_url):
        yield url, metrics_url


@pytest.fixture
async def ours(serve, tmp_path):
    _, http = await serve(model_repository=str(_talker(tmp_path / "models")))
    return http


def _without_ids(doc: dict) -> dict:
    """Response ids are fresh per answer on both sides (a uuid when the request sends none). MLServer's
    stream events also carry its CloudEvents headers in parameters.headers (README: not supported here)."""
    doc = {k: v for k, v in doc.items() if k != "id"}
    headers = doc.get("parameters", {}).get("headers")
    if headers and all(name.lower().startswith("ce-") for name in headers):
        doc["parameters"] = {k: v for k, v in doc["parameters"].items() if k != "headers"}
    return _without_empty_parameters(doc)


async def test_custom_endpoints_answer_as_mlserver(peer, ours):
    async with httpx.AsyncClient(base_url=peer[0], timeout=30) as theirs:
        for method, path, body in (("POST", "/talker/count", {"text": "a b c"}), ("GET", "/talker/hello", None),
                                   ("POST", "/talker/count", {"text": "d e"})):
            a = await ours.request(method, path, json=body)
            b = await theirs.request(method, path, json=body)
            assert (a.status_code, a.json()) == (b.status_code, b.json()), (method, path)


async def test_overridden_metadata_and_predict_as_mlserver(peer, ours):
    async with httpx.AsyncClient(base_url=peer[0], timeout=30) as theirs:
        a, b = await ours.get("/v2/models/talker"), await theirs.get("/v2/models/talker")
        assert (a.status_code, a.json()) == (b.status_code, b.json())
        a = await ours.post("/v2/models/talker/infer", json=TEXT)
        b = await theirs.post("/v2/models/talker/infer", json=TEXT)
        assert a.status_code == b.status_code == 200
        assert _without_ids(a.json()) == _without_ids(b.json())


async def _events(client: httpx.AsyncClient) -> list[dict]:
    async with client.stream("POST", "/v2/models/talker/infer_stream", json=TEXT) as r:
        assert r.status_code == 200
        return [_without_ids(json.loads(line[len("data: "):]))
                async for line in r.aiter_lines() if line.startswith("data: ")]


async def test_predict_stream_answers_infer_stream_as_mlserver(peer, ours):
    async with httpx.AsyncClient(base_url=peer[0], timeout=30) as theirs:
        mine, their_events = await _events(ours), await _events(theirs)
    assert mine == their_events and len(mine) == 3


def _samples(text: str, name: str) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith((f"{name}_count", f"{name}_sum"))}


@pytest.fixture(scope="module")
def peer_with_workers(tmp_path_factory):
    # MLServer 1.7.1 serves custom metrics only with parallel workers: in-process, its metrics port shows
    # prometheus_client's default registry, and mlserver.register puts them in a registry of its own.
    folder = _talker(tmp_path_factory.mktemp("mlserver-talker-workers") / "models")
    _as_mlserver(folder)
    with mlserver_serving(folder, parallel_workers=1) as (url, _, metrics_url):
        yield url, metrics_url


async def test_custom_metrics_count_as_mlserver(peer_with_workers, ours):
    # MLServer serves them on its metrics port, modelport on /metrics of the HTTP port: same series.
    url, metrics_url = peer_with_workers
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(2):
            assert (await client.post(url + "/v2/models/talker/infer", json=TEXT)).status_code == 200
            assert (await ours.post("/v2/models/talker/infer", json=TEXT)).status_code == 200
        theirs = _samples((await client.get(metrics_url + "/metrics")).text, "talker_words")
    assert _samples((await ours.get("/metrics")).text, "talker_words") == theirs

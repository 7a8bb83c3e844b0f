"""The console's routes over HTTP (the browser test drives the page itself), `enable_ui`, and `--version`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from modelport._version import __version__
from modelport.ui import _redact

from ..fixture_models import BrokenLoadModel, DeclaredModel, PickyModel

BODY = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}


async def test_page_shows_states_reasons_metadata_and_server(serve):
    server, client = await serve([DeclaredModel("declared"), BrokenLoadModel("broken")])
    r = await client.get("/ui")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert 'data-model="declared"' in page and "READY" in page
    assert 'data-model="broken"' in page and "FAILED" in page and "weights.bin not found" in page
    assert "<code>x</code>" in page and "FP32" in page and "[-1, 3]" in page
    assert "/ui/static/app.js" in page and "<noscript>" in page and __version__ in page
    doc = (await client.get("/ui/api/models")).json()
    states = {m["name"]: (m["state"], m["reason"]) for m in doc["models"]}
    assert states["declared"] == ("READY", "") and states["broken"][0] == "FAILED"
    assert doc["server"]["extensions"] and doc["server"]["settings"]["enable_ui"] is True
    assert (await client.get("/ui/static/app.css")).status_code == 200
    assert (await client.get("/ui/static/../__init__.py")).status_code == 404
    assert (await client.post("/ui")).status_code == 405


async def test_stats_follow_requests_and_failures(serve):
    server, client = await serve([DeclaredModel("declared"), PickyModel("picky")])
    for _ in range(3):
        assert (await client.post("/v2/models/declared/infer", json=BODY)).status_code == 200
    assert (await client.post("/v2/models/picky/infer", json=BODY)).status_code == 400
    stats = (await client.get("/ui/api/stats")).json()
    assert stats["metrics"] is True
    declared, picky = stats["models"]["declared"], stats["models"]["picky"]
    assert declared["requests"] == 3 and declared["failures"] == 0 and declared["buckets"]["+Inf"] == 3
    assert picky["requests"] == 1 and picky["failures"] == 1
    assert declared["in_flight"] == 0


async def test_the_buttons_api_is_the_repository_api(serve):
    """The page's buttons POST to /v2/repository/...: the console adds no second way to change models."""
    server, client = await serve([DeclaredModel("declared")])
    js = (await client.get("/ui/static/app.js")).text
    assert "/v2/repository/models/" in js and "/ui/api/" in js
    assert (await client.post("/ui/api/models")).status_code == 405


async def test_enable_ui_off(serve):
    server, client = await serve([DeclaredModel("declared")], enable_ui=False)
    assert (await client.get("/ui")).status_code == 404
    assert (await client.get("/ui/api/stats")).status_code == 404
    assert server.app.mounts == []


def test_secrets_are_redacted():
    assert _redact({"auth_token": "abc", "api_key": "k", "port": 1, "password": ""}) == {
        "auth_token": "***", "api_key": "***", "port": 1, "password": ""}


def test_version_flag():
    out = subprocess.run([sys.executable, "-m", "modelport.cli", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"modelport {__version__}"


@pytest.mark.parametrize("value", ["false", "0"])
def test_enable_ui_from_env(value):
    from modelport.settings import load_server_settings

    assert load_server_settings(env={"MODELPORT_ENABLE_UI": value}).enable_ui is False

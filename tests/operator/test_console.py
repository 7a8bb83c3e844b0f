"""The console's routes over HTTP (the browser test drives the page itself): the read APIs, the route table,
redaction of everything it shows, the page shell with API keys, the chart history, `enable_ui`, `--version`."""

from __future__ import annotations

import json
import subprocess
import sys

import math

import pytest

from modelport._version import __version__
from modelport.redact import redact, redact_text
from modelport import doors
from modelport.ui import HANDLERS
from modelport.ui.history import History, quantile_ms

from ..fixture_models import BrokenLoadModel, DeclaredModel, PickyModel

BODY = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
SECRETS = ("hf_SECRETTOKEN123", "p4ss", "pl-secret", "nested-pw", "s3user:s3pass", "abcSIG", "amzSIG", "listed-token", "ftpSECRET")


def secret_folder(tmp_path):
    """A models folder whose settings hold secrets at every depth and absolute paths."""
    models = tmp_path / "models"
    (models / "leaky").mkdir(parents=True)
    (models / "leaky" / "model-settings.json").write_text(json.dumps({
        "name": "leaky", "implementation": "tests.fixture_models.DeclaredModel",
        "parameters": {"uri": str(models / "leaky" / "weights.bin"), "extra": {
            "hf_token": "hf_SECRETTOKEN123", "db": "postgres://u:p4ss@db/x",
            "nested": {"auth": {"password": "nested-pw"}, "mirrors": ["s3://s3user:s3pass@host/bucket", {"token": "listed-token"}]},
            "signed": "https://store.example/b/w.bin?sig=abcSIG&X-Amz-Signature=amzSIG&part=1",
            "cache_dir": str(tmp_path / "elsewhere" / "cache")}},
        "payload_log": {"url": "http://user:pl-secret@127.0.0.1:9/"}}))
    (models / "bad-uri").mkdir()  # fails to load; its reason quotes the URI, credentials and all
    (models / "bad-uri" / "model-settings.json").write_text(json.dumps({
        "name": "bad-uri", "implementation": "modelport.runtimes.sklearn.SKLearnModel",
        "parameters": {"uri": "ftp://ftpuser:ftpSECRET@files.example/m.bin"}}))
    return models


def tear(models):
    """A settings file that cannot be read (after start-up, where it would stop the server): its reason names a path."""
    (models / "torn").mkdir()
    (models / "torn" / "model-settings.json").write_text("{not json")


def assert_clean(text: str, tmp_path) -> None:
    for secret in SECRETS:
        assert secret not in text, secret
    assert str(tmp_path) not in text  # no absolute path (the models folder lives under tmp_path)


def test_redact_any_depth_urls_and_paths(tmp_path):
    root = tmp_path / "models"
    doc = {"a": {"hf_token": "t", "list": [{"password": "p"}, "s3://u:p@h/b", "https://tok@h/x?sig=s&X-Amz-Signature=z&a=1"]},
           "folder": str(root / "boom"), "model_repository": str(root), "outside": str(tmp_path / "x" / "w.bin"),
           "route": "see /v2/models/iris/infer", "api_keys": [{"name": "ops"}], "port": 8080, "password": "", "cors_allow_credentials": False}
    assert redact(doc, root) == {
        "a": {"hf_token": "***", "list": [{"password": "***"}, "s3://***@h/b", "https://***@h/x?sig=***&X-Amz-Signature=***&a=1"]},
        "folder": "boom", "model_repository": "models", "outside": "w.bin", "route": "see /v2/models/iris/infer",
        "api_keys": "***", "port": 8080, "password": "", "cors_allow_credentials": False}
    assert redact_text(f"Model folder {root}/gone does not exist", root) == "Model folder gone does not exist"
    assert redact_text(f"uri file://{root}/m/w.bin; supported: file://, s3://", root) == "uri file://m/w.bin; supported: file://, s3://"


def test_route_table_kinds():
    assert {d.path for d in doors.CONSOLE if d.kind == "public"} == {"/ui", "/ui/static/{asset}"}
    assert {d.kind for d in doors.CONSOLE} == {"public", "read"}  # it changes nothing: no admin door of its own
    assert set(HANDLERS) == {d.name for d in doors.CONSOLE}
    router = doors.RestRouter((d, None) for d in doors.CONSOLE)
    assert router.match("GET", "/ui/api/history/iris")[2] == {"model_name": "iris"}
    with pytest.raises(doors.RouteMiss):
        router.match("GET", "/ui/api/nothing")


async def test_page_and_apis_show_states_reasons_and_detail(serve):
    server, client = await serve([DeclaredModel("declared"), BrokenLoadModel("broken")])
    r = await client.get("/ui")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert '"name": "declared"' in page and "FAILED" in page and "weights.bin not found" in page
    assert "/ui/static/app.js" in page and "<noscript>" in page and __version__ in page
    doc = (await client.get("/ui/api/models")).json()
    states = {m["name"]: (m["state"], m["reason"]) for m in doc["models"]}
    assert states["declared"] == ("READY", "") and states["broken"][0] == "FAILED"
    assert doc["server"]["settings"]["enable_ui"] is True and "pid" not in json.dumps(doc["server"])
    assert doc["server"]["ready"] is False and doc["server"]["not_ready_models"][0]["name"] == "broken"
    detail = (await client.get("/ui/api/models/declared")).json()
    assert detail["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}] and detail["state"] == "READY"
    assert (await client.get("/ui/api/models/nope")).status_code == 404
    assert (await client.get("/ui/static/app.css")).status_code == 200
    assert (await client.get("/ui/static/../__init__.py")).status_code == 404
    assert (await client.post("/ui")).status_code == 405
    assert (await client.post("/ui/api/models")).status_code == 405


async def test_nothing_secret_or_absolute_in_page_or_apis(serve, tmp_path):
    models = secret_folder(tmp_path)
    server, client = await serve(model_repository=str(models))
    tear(models)
    assert (await client.post("/v2/repository/models/leaky/load")).status_code == 200
    shown = [(await client.get(path)).text for path in
             ("/ui", "/ui/api/models", "/ui/api/models/leaky", "/ui/api/models/torn", "/ui/api/stats", "/ui/api/history")]
    for text in shown:
        assert_clean(text, tmp_path)
    detail = json.loads(shown[2])
    assert detail["settings"]["parameters.extra.hf_token"] == "***"
    assert detail["settings"]["parameters.extra.db"] == "postgres://***@db/x"
    assert detail["settings"]["parameters.uri"] == "leaky/weights.bin"
    assert detail["settings"]["parameters.extra.cache_dir"] == "cache"
    assert json.loads(shown[1])["server"]["settings"]["model_repository"] == "models"


async def test_models_folder_gone_renders_from_memory(serve, tmp_path):
    models = tmp_path / "models"
    (models / "m").mkdir(parents=True)
    (models / "m" / "model-settings.json").write_text(json.dumps({"name": "m", "implementation": "tests.fixture_models.DeclaredModel"}))
    server, client = await serve(model_repository=str(models))
    assert (await client.post("/v2/repository/models/m/load")).status_code == 200
    models.rename(tmp_path / "moved")
    r = await client.get("/ui/api/models")
    assert r.status_code == 200
    doc = r.json()
    assert [m["name"] for m in doc["models"]] == ["m"]
    assert doc["models"][0]["state"] == "READY" and "models folder is missing" in doc["models"][0]["reason"]
    assert str(tmp_path) not in r.text
    assert (await client.get("/ui")).status_code == 200


async def test_stats_and_history_follow_requests(serve):
    server, client = await serve([DeclaredModel("declared"), PickyModel("picky")])
    assert (await client.get("/ui/api/history/declared")).status_code == 200  # the console is watched: sampling starts
    for _ in range(3):
        assert (await client.post("/v2/models/declared/infer", json=BODY)).status_code == 200
    assert (await client.post("/v2/models/picky/infer", json=BODY)).status_code == 400
    stats = (await client.get("/ui/api/stats")).json()
    declared, picky = stats["models"]["declared"], stats["models"]["picky"]
    assert declared["requests"] == 3 and declared["failures"] == 0 and declared["buckets"]["+Inf"] == 3
    assert picky["requests"] == 1 and picky["failures"] == 1 and declared["in_flight"] == 0
    console = next(handler for prefix, handler in server.rest_app.mounts if prefix == "/ui")
    taken = console.history.taken
    console.history.sample()  # one more sample now (the timer takes them every 2 s)
    history = (await client.get("/ui/api/history/declared")).json()
    assert history["fields"][:2] == ["rps", "errors_pct"] and len(history["t"]) == taken + 1 == len(history["rps"])
    assert console.history.task is not None and not console.history.task.done()


def test_history_ring_is_bounded_and_turns_counters_into_rates():
    counts = {"m": {"requests": 0.0, "failures": 0.0, "buckets": {"0.01": 0.0, "+Inf": 0.0}, "batch_sum": 0.0,
                    "batch_count": 0.0, "in_flight": 0}}
    history = History(lambda: json.loads(json.dumps(counts)), interval=1.0, keep=4)
    for step in range(6):
        counts["m"]["requests"] += 10
        counts["m"]["failures"] += 1
        counts["m"]["buckets"] = {"0.01": counts["m"]["requests"], "+Inf": counts["m"]["requests"]}
        history.sample(now=1000.0 + step)
    series = history.series("m")
    assert series["t"] == [1002.0, 1003.0, 1004.0, 1005.0]  # the newest 4 of 6
    assert series["rps"] == [10.0] * 4 and series["errors_pct"] == [10.0] * 4
    assert 0 < series["p50_ms"][-1] <= 10 and history.series("")["rps"] == [10.0] * 4  # the server ring
    assert math.isnan(quantile_ms({"0.1": 0.0, "+Inf": 0.0}, 0.5))  # no requests: no latency


@pytest.mark.parametrize("who", ["none", "infer", "other", "admin"])
async def test_with_api_keys_the_shell_is_public_and_the_data_is_not(serve, tmp_path, who):
    keys = [{"name": "inf", "key": "INFKEY-123456", "scopes": ["infer"]},
            {"name": "other", "key": "OTHERKEY-123456", "scopes": ["infer"], "models": ["someone-else"]},
            {"name": "ops", "key": "ADMINKEY-123456", "scopes": ["admin"]}]
    server, client = await serve([DeclaredModel("declared")], api_keys=keys, model_repository=str(secret_folder(tmp_path)))
    headers = {"none": {}, "infer": {"Authorization": "Bearer INFKEY-123456"},
               "other": {"Authorization": "Bearer OTHERKEY-123456"}, "admin": {"X-API-Key": "ADMINKEY-123456"}}[who]
    page = await client.get("/ui", headers=headers)
    assert page.status_code == 200 and '"auth": true' in page.text
    assert "declared" not in page.text and "leaky" not in page.text  # the shell carries no data
    assert (await client.get("/ui/static/app.js", headers=headers)).status_code == 200
    expected = {"none": 401, "infer": 200, "other": 200, "admin": 200}[who]
    listed = await client.get("/ui/api/models", headers=headers)
    assert listed.status_code == expected
    if expected == 200:  # a key limited to other models does not even see these names
        names = {m["name"] for m in listed.json()["models"]}
        assert names == (set() if who == "other" else {"declared", "leaky", "bad-uri"})
        stats = (await client.get("/ui/api/stats", headers=headers)).json()["models"]
        assert ("declared" in stats) is (who != "other")
    assert (await client.get("/ui/api/models/declared", headers=headers)).status_code == ({"other": 403}.get(who, expected))
    assert (await client.get("/ui/api/history/declared", headers=headers)).status_code == ({"other": 403}.get(who, expected))
    unload = await client.post("/v2/repository/models/declared/unload", headers=headers)
    assert unload.status_code == {"none": 401, "infer": 403, "other": 403, "admin": 200}[who]


async def test_enable_ui_off(serve):
    server, client = await serve([DeclaredModel("declared")], enable_ui=False)
    assert (await client.get("/ui")).status_code == 404
    assert (await client.get("/ui/api/stats")).status_code == 404
    assert not any(prefix.startswith("/ui") for prefix, _ in server.app.mounts)


def test_version_flag():
    out = subprocess.run([sys.executable, "-m", "modelport.cli", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"modelport {__version__}"


@pytest.mark.parametrize("value", ["false", "0"])
def test_enable_ui_from_env(value):
    from modelport.settings import load_server_settings

    assert load_server_settings(env={"MODELPORT_ENABLE_UI": value}).enable_ui is False

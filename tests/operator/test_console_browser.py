"""The console and the API docs in a real browser: Debian's headless Chromium driven by Playwright
(no browser download). Screenshots go to the test's tmp dir, or to $MODELPORT_ARTIFACTS when set."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import httpx
import pytest

from modelport.cli import EXAMPLES

from ..fixture_models import BrokenLoadModel, DeclaredModel
from ..helpers import server_in_thread
from .test_console import SECRETS, assert_clean, secret_folder
from .test_openapi import _examples

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 30_000
MANY = 292  # with iris, sentiment, leaky, bad-uri, tiny-a, tiny-b, broken and the hostile name: 300 models
HOSTILE = "<img src=x onerror=\"window.pwned=1\">'"  # a model name is text, never markup
KEYS = [{"name": "inf", "key": "INFKEY-browser-1", "scopes": ["infer"]}, {"name": "ops", "key": "ADMINKEY-browser-1", "scopes": ["admin"]}]
V2_SENTIMENT = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["good"]}]}

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)")


def _folder(tmp: Path) -> Path:
    """iris and sentiment (the examples), a model whose settings hold secrets, two tiny ones: all loadable by name."""
    models = secret_folder(tmp)
    for name in ("iris", "sentiment"):
        shutil.copytree(EXAMPLES / name, models / name)
    for name in ("tiny-a", "tiny-b"):
        (models / name).mkdir()
        (models / name / "model-settings.json").write_text(
            '{"name": "%s", "implementation": "tests.fixture_models.DeclaredModel"}' % name)
    return models


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console")
    models = [DeclaredModel(f"model-{i:03d}") for i in range(MANY)] + [BrokenLoadModel("broken"), DeclaredModel(HOSTILE)]
    with server_in_thread(models, model_repository=str(_folder(tmp))) as server:
        yield f"http://127.0.0.1:{server.http_port}", tmp


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("keyed")
    with server_in_thread([DeclaredModel("declared")], model_repository=str(_folder(tmp)), api_keys=KEYS) as server:
        yield f"http://127.0.0.1:{server.http_port}", tmp


@pytest.fixture(scope="module")
def url():
    with server_in_thread(_examples(), model_repository=str(EXAMPLES)) as server:
        yield f"http://127.0.0.1:{server.http_port}"


@pytest.fixture
def browser(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 800})
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("MODELPORT_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _one_screen(page) -> None:
    height = page.evaluate("[document.documentElement.scrollHeight, window.innerHeight]")
    assert height[0] <= height[1], height


def test_three_hundred_models_fit_one_screen_search_filter_and_detail(many, browser, tmp_path):
    from playwright.sync_api import expect

    url, tmp = many
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url + "/ui")
    rows = page.locator("#rows tr")
    expect(page.locator("#page-info")).to_contain_text("of 300")
    shown = rows.count()
    assert 10 <= shown < 40
    _one_screen(page)
    expect(rows.nth(0)).to_have_attribute("data-model", "bad-uri")  # problems first, with the reason
    expect(rows.nth(1)).to_have_attribute("data-model", "broken")
    expect(rows.nth(1).locator(".reason")).to_contain_text("weights.bin not found")
    expect(rows.nth(0).locator(".reason")).to_contain_text("ftp://***@files.example")
    page.screenshot(path=str(_shots(tmp_path) / "console-300.png"))

    page.locator("#next").click()
    expect(page.locator("#page-info")).to_contain_text(f"{shown + 1}–")
    page.fill("#search", "model-01")
    expect(rows).to_have_count(10)
    expect(page.locator("#page-info")).to_have_text("1–10 of 10")
    page.screenshot(path=str(_shots(tmp_path) / "console-search.png"))
    page.fill("#search", "")
    page.locator('#chips [data-state="FAILED"]').click()
    expect(rows).to_have_count(2)
    page.locator('#chips [data-state=""]').click()
    page.fill("#search", "img")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("a")).to_have_text(HOSTILE)
    rows.first.locator("a").click()
    expect(page.locator("#view-model h2")).to_have_text(HOSTILE)
    assert page.evaluate("window.pwned") is None

    # A failed model's detail: the reason, and no Send.
    page.goto(url + "/ui#/m/broken")
    expect(page.locator("#view-model .reason.box")).to_contain_text("weights.bin not found")
    expect(page.locator('#view-model .try')).to_contain_text("load it to try")
    assert page.locator('#view-model [data-action="send"]').count() == 0

    # The detail of iris: metadata, settings, try it (V2 form, V1 editor, curl), charts.
    page.goto(url + "/ui#/")
    page.fill("#search", "iris")
    page.locator('#rows tr[data-model="iris"] a').click()
    expect(page).to_have_url(re.compile(r"#/m/iris$"))
    box = page.locator("#view-model .try")
    expect(page.locator("#view-model table.io").first).to_contain_text("input-0")
    expect(box.locator('[data-input="input-0"] .shape')).to_have_value("[1,4]")
    box.locator('button[data-action="send"]').click()
    expect(box.locator(".meta")).to_have_text(re.compile(r"HTTP 200 · [0-9.]+ ms"))
    expect(box.locator("pre.response")).to_contain_text('"output-0"')
    box.locator("select").select_option("v1json")
    box.locator('button[data-action="send"]').click()
    expect(box.locator("pre.response")).to_contain_text("predictions")
    box.locator('button[data-action="curl"]').click()
    expect(box.locator("pre.curl")).to_contain_text(f"curl -X POST '{url}/v1/models/iris:predict'")
    for _ in range(30):
        assert httpx.post(url + "/v2/models/iris/infer", json={"inputs": [
            {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}).status_code == 200
    rps = page.locator('#view-model [data-chart="rps"] .v')
    expect(rps).not_to_have_text("–")
    # The history is the server's: a fresh page shows it at once, without waiting for new samples.
    page.reload()
    expect(rps).not_to_have_text("–")
    expect(page.locator("#view-model .kv").first).to_contain_text(re.compile(r"requests\s*3[0-9]"))
    page.screenshot(path=str(_shots(tmp_path) / "console-detail.png"), full_page=True)
    assert not errors, errors


def test_unload_asks_first_and_load_many_asks_too(many, browser, tmp_path):
    from playwright.sync_api import expect

    url, tmp = many
    page = browser.new_page()
    page.goto(url + "/ui")
    page.fill("#search", "sentiment")
    row = page.locator('#rows tr[data-model="sentiment"]')
    expect(row.locator(".state")).to_have_text("READY")
    row.locator('button[data-action="unload"]').click()
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Unload sentiment?")
    page.screenshot(path=str(_shots(tmp_path) / "console-confirm.png"))
    dialog.locator('button[value="cancel"]').click()
    expect(dialog).to_be_hidden()
    assert httpx.get(url + "/v2/models/sentiment/ready").json()["ready"] is True  # cancelled: nothing happened
    row.locator('button[data-action="unload"]').click()
    dialog.locator("#confirm-ok").click()
    expect(row.locator(".state")).to_have_text("UNAVAILABLE")
    assert httpx.get(url + "/v2/models/sentiment/ready").json()["ready"] is False
    row.locator('button[data-action="load"]').click()  # loading one needs no confirmation
    expect(row.locator(".state")).to_have_text("READY")
    assert httpx.post(url + "/v2/models/sentiment/infer", json=V2_SENTIMENT).status_code == 200

    for name in ("tiny-a", "tiny-b"):
        assert httpx.post(f"{url}/v2/repository/models/{name}/unload").status_code == 200
    page.fill("#search", "tiny")
    page.locator("#load-shown").click()
    expect(dialog).to_contain_text("Load 2 models?")
    dialog.locator("#confirm-ok").click()
    expect(page.locator('#rows tr[data-model="tiny-a"] .state')).to_have_text("READY")
    expect(page.locator('#rows tr[data-model="tiny-b"] .state')).to_have_text("READY")


def test_no_secret_and_no_absolute_path_in_page_or_apis(many, browser, tmp_path):
    from playwright.sync_api import expect

    url, tmp = many
    page = browser.new_page()
    page.goto(url + "/ui#/m/leaky")
    expect(page.locator("#view-model .kv").last).to_contain_text("parameters.extra.hf_token")
    expect(page.locator("#view-model .kv").last).to_contain_text("postgres://***@db/x")
    assert_clean(page.content(), tmp)
    page.screenshot(path=str(_shots(tmp_path) / "console-leaky.png"), full_page=True)
    page.goto(url + "/ui#/server")
    expect(page.locator("#view-server")).to_contain_text("model_repository")
    assert_clean(page.content(), tmp)
    assert "pid" not in page.locator("#view-server").inner_text().lower().split()
    page.screenshot(path=str(_shots(tmp_path) / "console-server.png"), full_page=True)
    for path in ("/ui", "/ui/api/models", "/ui/api/models/leaky", "/ui/api/history", "/ui/api/stats"):
        assert_clean(httpx.get(url + path).text, tmp)


def test_with_api_keys_the_page_asks_for_a_key(keyed, browser, tmp_path):
    from playwright.sync_api import expect

    url, tmp = keyed
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url + "/ui")
    expect(page.locator("#keygate")).to_be_visible()
    assert page.locator("#rows tr").count() == 0
    page.screenshot(path=str(_shots(tmp_path) / "console-key.png"))
    page.fill("#key-input", "WRONG-key")
    page.locator("#key-form button.primary").click()
    expect(page.locator("#key-error")).to_contain_text("Invalid API key")
    page.fill("#key-input", "INFKEY-browser-1")
    page.locator("#key-form button.primary").click()
    expect(page.locator("#keygate")).to_be_hidden()
    expect(page.locator('#rows tr[data-model="declared"] .state')).to_have_text("READY")
    assert "INFKEY-browser-1" not in page.content()
    # An infer key reads but cannot unload: the repository API says so, and the page shows it.
    page.locator('#rows tr[data-model="declared"] button[data-action="unload"]').click()
    page.locator("dialog#confirm #confirm-ok").click()
    expect(page.locator(".toast").last).to_contain_text("403")
    assert httpx.get(url + "/v2/models/declared/ready", headers={"X-API-Key": "INFKEY-browser-1"}).json()["ready"] is True
    # The key lives in this tab only: a new tab asks again.
    other = browser.new_page()
    other.goto(url + "/ui")
    expect(other.locator("#keygate")).to_be_visible()
    for secret in SECRETS:
        assert secret not in page.content()
    assert not errors, errors


def test_console_reads_without_javascript(many, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    url, tmp = many
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_context(java_script_enabled=False).new_page()
            page.goto(url + "/ui")
            assert "JavaScript is off" in page.locator(".banner").first.inner_text()
            assert page.locator('noscript tr[data-model="broken"] .state, tr[data-model="broken"] .state').first.inner_text() == "FAILED"
            assert page.locator("button[data-action]").count() == 0  # no dead buttons
        finally:
            browser.close()


def test_docs_page_renders_swagger_ui(url, browser, tmp_path):
    from playwright.sync_api import expect

    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url + "/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    expect(page.locator(".swagger-ui")).to_contain_text("/v2/models/iris/infer")
    assert all(r.startswith(url) or r.startswith("data:") for r in requests), requests  # nothing from a CDN
    page.screenshot(path=str(_shots(tmp_path) / "docs.png"))

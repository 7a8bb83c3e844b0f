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

from ..helpers import server_in_thread
from .test_openapi import _examples

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 30_000

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)")


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
            viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("MODELPORT_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_console_lists_unloads_reloads_and_tries(url, browser, tmp_path):
    from playwright.sync_api import expect

    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url + "/ui")
    rows = page.locator("table.models tbody tr")
    expect(rows).to_have_count(2)
    iris = page.locator('tr[data-model="iris"]')
    expect(iris.locator(".state")).to_have_text("READY")
    expect(page.locator('tr[data-model="sentiment"] .state')).to_have_text("READY")
    expect(page.locator('section.model[data-model="iris"] table.io').first).to_contain_text("input-0")

    # Unload and load again with the buttons; the server agrees each time.
    iris.locator('button[data-action="unload"]').click()
    expect(iris.locator(".state")).to_have_text("UNAVAILABLE")
    assert httpx.get(url + "/v2/models/iris/ready").json()["ready"] is False
    iris.locator('button[data-action="load"]').click()
    expect(iris.locator(".state")).to_have_text("READY")
    assert httpx.get(url + "/v2/models/iris/ready").json()["ready"] is True

    # Try it: the form built from iris's declared input sends a V2 request and shows the answer.
    box = page.locator('.try[data-model="iris"]')
    expect(box.locator('[data-input="input-0"] .shape')).to_have_value("[1,4]")
    box.locator('button[data-action="send"]').click()
    expect(box.locator(".meta")).to_have_text(re.compile(r"HTTP 200 · [0-9.]+ ms"))
    expect(box.locator("pre.response")).to_contain_text('"output-0"')
    # V1 through the JSON editor, and the request as curl.
    box.locator("select").select_option("v1json")
    box.locator('button[data-action="send"]').click()
    expect(box.locator("pre.response")).to_contain_text("predictions")
    box.locator('button[data-action="curl"]').click()
    expect(box.locator("pre.curl")).to_contain_text(f"curl -X POST '{url}/v1/models/iris:predict'")

    # Live charts: traffic shows up as requests/s within a few polls.
    for _ in range(20):
        httpx.post(url + "/v2/models/sentiment/infer",
                   json={"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["good"]}]})
    expect(page.locator('.charts[data-model="sentiment"] [data-chart="rps"] .v')).not_to_have_text("–", timeout=TIMEOUT_MS)
    page.locator("#server").scroll_into_view_if_needed()
    expect(page.locator("#server")).to_contain_text("binary_tensor_data")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(_shots(tmp_path) / "console.png"))
    page.screenshot(path=str(_shots(tmp_path) / "console-full.png"), full_page=True)
    assert not errors, errors


def test_console_reads_without_javascript(url, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_context(java_script_enabled=False).new_page()
            page.goto(url + "/ui")
            assert "JavaScript is off" in page.locator("noscript, .banner").first.inner_text() or page.locator(".banner").count()
            assert page.locator('tr[data-model="iris"] .state').inner_text() == "READY"
            assert "FP32" in page.locator('section.model[data-model="iris"]').inner_text()
            assert page.locator('tr[data-model="iris"] button').count() == 0  # no dead buttons
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

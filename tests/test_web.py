"""The question page in a real headless Chromium (Debian's, driven by Playwright).

Screenshots are written to ``var/test-artifacts/`` (git-ignored) for a person to look at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, start_server, stop_server

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "var" / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
Q = "How many intelligent coal mines had Shanxi built by the end of 2024?"


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed (.ci/run installs it)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def _server(tmp_path: Path, corpus_dir: Path, **extra: str):
    env = dict(os.environ)
    env.update(
        RAG_SEEDS_DIR=str(corpus_dir),
        RAG_INDEX_DIR=str(tmp_path / "index"),
        RAG_LOG_LEVEL="WARNING",
        **extra,
    )
    return start_server(env)


def test_ask_see_highlighted_span_open_the_document(browser, tmp_path, corpus_dir):
    proc, base = _server(tmp_path, corpus_dir)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(base + "/")
        page.keyboard.type(Q)  # the question field has focus on load
        page.keyboard.press("Enter")
        page.wait_for_selector("#answer:not(:empty)")
        answer = page.inner_text("#answer")
        assert "268" in answer
        first = page.locator("#citations li").first
        assert first.locator("mark.answer").first.inner_text() == answer
        assert "en_coal" in first.inner_text()
        page.screenshot(path=str(ARTIFACTS / "answer.png"), full_page=True)
        first.locator("button").click()
        page.wait_for_selector("#document:not([hidden]) #highlight")
        assert page.inner_text("#highlight") == answer
        assert page.locator("#highlight").is_visible()
        in_view = page.evaluate(
            "() => { const r = document.getElementById('highlight').getBoundingClientRect();"
            " const box = document.getElementById('doc-text').getBoundingClientRect();"
            " return r.top >= box.top && r.bottom <= box.bottom; }"
        )
        assert in_view, "the span is scrolled into view"
        page.screenshot(path=str(ARTIFACTS / "document.png"), full_page=True)
        page.keyboard.press("Escape")
        assert page.locator("#document").is_hidden()
        page.fill("#question", "Who won the 2022 FIFA World Cup?")
        page.click("#submit")
        page.wait_for_selector("#answer.none")
        assert "No definite answer" in page.inner_text("#answer")
    finally:
        stop_server(proc)


def test_keyboard_only_narrow_screen_and_api_key(browser, tmp_path, corpus_dir):
    proc, base = _server(tmp_path, corpus_dir, RAG_API_KEYS="page-key")
    try:
        page = browser.new_page(viewport={"width": 360, "height": 740})
        page.goto(base + "/")
        page.keyboard.type("山西有多少座智能化煤矿？")
        page.keyboard.press("Enter")
        page.wait_for_selector("#status.error")
        assert "API key" in page.inner_text("#status")
        page.click("#settings summary")
        page.fill("#key", "page-key")
        page.focus("#question")
        page.keyboard.press("Enter")
        page.wait_for_selector("#answer:not(:empty)")
        assert "268" in page.inner_text("#answer")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 360, "no horizontal scrolling on a narrow screen"
        page.keyboard.press("Tab")  # from the question: the Ask button, then the first citation
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.className") == "cite"
        page.keyboard.press("Enter")
        page.wait_for_selector("#document:not([hidden]) #highlight")
        page.screenshot(path=str(ARTIFACTS / "narrow.png"), full_page=True)
        page.reload()
        assert page.input_value("#key") == "page-key", "the key is kept in the browser"
    finally:
        stop_server(proc)

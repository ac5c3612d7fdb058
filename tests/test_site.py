"""The built site in a real headless Chromium: pages load cleanly, figures are described, search works.

Chromium is Debian's package (``/usr/bin/chromium``) driven by Playwright through its executable
path: no browser download. External requests (MathJax's CDN) are answered with an empty file, so
the test needs no network; it records which hosts a page asked for and only allows known CDNs.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from urllib.parse import urlparse

import nbformat
import pytest
from conftest import toc_chapters, toc_files

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("SYSLAB_CHROMIUM", "/usr/bin/chromium")
ALLOWED_EXTERNAL_HOSTS = {"cdn.jsdelivr.net"}  # MathJax 3, loaded by readers' browsers


@pytest.fixture(scope="module")
def site(built_book):
    handler = functools.partial(QuietHandler, directory=str(built_book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def browser():
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium (see .ci/run)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, url: str):
    """Open ``url``; return (page, problems, external hosts asked for)."""
    page = browser.new_page()
    problems: list[str] = []
    external: set[str] = set()

    def route(route):
        host = urlparse(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            external.add(host)
            route.fulfill(status=200, body="", content_type="application/javascript")

    page.route("**/*", route)
    page.on(
        "console",
        lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None,
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
    page.on(
        "response",
        lambda response: (
            problems.append(f"HTTP {response.status}: {response.url}") if response.status >= 400 else None
        ),
    )
    page.goto(url, wait_until="load")
    page.wait_for_timeout(300)
    return page, problems, external


@pytest.mark.parametrize("name", toc_files())
def test_page_loads_cleanly(browser, site, name):
    page, problems, external = open_page(browser, f"{site}/{name}.html")
    try:
        assert not problems, "\n".join(problems)
        assert external <= ALLOWED_EXTERNAL_HOSTS, (
            f"unexpected external hosts: {external - ALLOWED_EXTERNAL_HOSTS}"
        )
        assert page.locator("main h1").count() >= 1
        # Every image has real alt text (not its file name), and a figure also has a caption.
        undescribed = page.evaluate(
            """() => Array.from(document.querySelectorAll('main img')).filter(img => {
                   const alt = (img.getAttribute('alt') || '').trim();
                   return !alt || /\\.(png|svg|jpe?g|gif)$/i.test(alt);
               }).map(img => img.src)"""
        )
        assert not undescribed, f"images without real alt text: {undescribed}"
    finally:
        page.close()


def chapter_title(chapter) -> str:
    nb = nbformat.read(str(chapter), as_version=4)
    return nb.cells[0].source.splitlines()[0].lstrip("# ").strip()


@pytest.mark.parametrize("chapter", toc_chapters(), ids=lambda p: p.stem)
def test_search_finds_the_chapter_by_its_title(browser, site, chapter):
    title = chapter_title(chapter)
    page, problems, _ = open_page(browser, f"{site}/search.html?q={title}")
    try:
        page.wait_for_selector(f"#search-results a[href*='{chapter.stem}']", timeout=15_000)
        assert not problems, "\n".join(problems)
    finally:
        page.close()

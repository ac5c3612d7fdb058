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


# --- Phones, tablets and laptops --------------------------------------------------------------

PHONE = {"width": 390, "height": 844}
TABLET = {"width": 820, "height": 1180}
LAPTOP = {"width": 1440, "height": 900}
NARROW = {"phone": PHONE, "tablet": TABLET}
# Pages the reader-experience review found too wide on a phone, plus the other kinds of page.
SAMPLE_PAGES = [
    "intro",
    "glossary",
    "build-report",
    "chapters/gc-pauses",
    "chapters/sargable-queries",
    "chapters/soft-delete",
    "chapters/auto-increment-overflow",
    "chapters/cache-stack",
    "chapters/consistent-hashing",
]
SAMPLE_CHAPTERS = [name for name in SAMPLE_PAGES if name.startswith("chapters/")]


def build_dpi() -> float:
    """The dpi the book build draws figures at (_ext/syslab_book.py's matplotlibrc)."""
    import re as _re
    import sys as _sys

    from conftest import ROOT

    _sys.path.insert(0, str(ROOT / "_ext"))
    import syslab_book

    return float(_re.search(r"figure\.dpi:\s*([\d.]+)", syslab_book.MATPLOTLIBRC).group(1))


def open_at(browser, url: str, viewport: dict):
    page = browser.new_page(viewport=viewport)
    problems: list[str] = []
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost")
            else route.fulfill(status=200, body="", content_type="application/javascript")
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.goto(url, wait_until="load")
    page.wait_for_timeout(300)
    return page, problems


def dialog_open(page, dialog_id: str) -> bool:
    return page.evaluate(
        f"() => !!document.getElementById('{dialog_id}') && document.getElementById('{dialog_id}').open"
    )


@pytest.mark.parametrize("device", list(NARROW), ids=str)
def test_menu_and_page_contents_open_on_phones_and_tablets(browser, site, device):
    """The visible menu button opens the navigation; a chapter link in it works; the contents button opens."""
    page, problems = open_at(browser, f"{site}/intro.html", NARROW[device])
    try:
        menu = page.locator(".bd-header-article .primary-toggle")
        assert menu.is_visible(), "no visible menu button"
        menu.click()
        page.wait_for_function(
            "() => document.getElementById('pst-primary-sidebar-modal').open", timeout=5_000
        )
        link = page.locator("#pst-primary-sidebar-modal a[href*='chapters/gc-pauses']").first
        assert link.is_visible(), "the navigation drawer does not show the chapters"
        link.click()
        page.wait_for_url("**/chapters/gc-pauses.html*", timeout=10_000)
        page.wait_for_timeout(300)
        contents = page.locator(".bd-header-article .secondary-toggle")
        assert contents.is_visible(), "no visible page-contents button on a chapter"
        contents.click()
        page.wait_for_function(
            "() => document.getElementById('pst-secondary-sidebar-modal').open", timeout=5_000
        )
        entries = page.locator("#pst-secondary-sidebar-modal a.nav-link")
        assert entries.count() >= 3, "the page contents drawer is empty"
        page.keyboard.press("Escape")
        page.wait_for_timeout(200)
        assert not dialog_open(page, "pst-secondary-sidebar-modal")
        assert not problems, problems
    finally:
        page.close()


def test_menu_collapses_the_sidebar_on_a_laptop_and_no_empty_header(browser, site):
    page, problems = open_at(browser, f"{site}/chapters/gc-pauses.html", LAPTOP)
    try:
        header = page.evaluate(
            "() => { const h = document.getElementById('pst-header'); return h ? h.getBoundingClientRect().height : 0; }"
        )
        assert header == 0, f"pydata-sphinx-theme's empty {header:.0f}-px header band is back"
        searches = page.evaluate(
            "() => Array.from(document.querySelectorAll('.search-button-field')).filter(e => e.offsetParent).length"
        )
        assert searches <= 1, f"{searches} search boxes visible"
        sidebar = page.locator("#pst-primary-sidebar")
        assert sidebar.is_visible()
        page.locator(".bd-header-article .primary-toggle").click()
        page.wait_for_timeout(500)
        assert "pst-sidebar-hidden" in (sidebar.get_attribute("class") or "")
        assert not sidebar.is_visible(), "the menu button did not collapse the sidebar"
        assert not problems, problems
    finally:
        page.close()


@pytest.mark.parametrize("device", list(NARROW), ids=str)
@pytest.mark.parametrize("name", SAMPLE_PAGES)
def test_no_page_is_wider_than_the_screen(browser, site, device, name):
    page, _ = open_at(browser, f"{site}/{name}.html", NARROW[device])
    try:
        width, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        if width > inner + 1:
            culprits = page.evaluate(
                """() => Array.from(document.querySelectorAll('main *')).filter(e => {
                       const r = e.getBoundingClientRect();
                       if (r.right <= window.innerWidth + 1 || r.width === 0) return false;
                       for (let a = e.parentElement; a && a.tagName !== 'BODY'; a = a.parentElement) {
                           if (getComputedStyle(a).overflowX !== 'visible') return false;  // scrolls in its own box
                       }
                       return true;
                   }).slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)
                                          + ' ' + (e.textContent || '').trim().slice(0, 50))"""
            )
            pytest.fail(f"{name} is {width} px wide on a {inner}-px screen; widest: {culprits}")
    finally:
        page.close()


@pytest.mark.parametrize("name", SAMPLE_CHAPTERS)
def test_tables_scroll_inside_their_own_box_on_a_phone(browser, site, name):
    page, _ = open_at(browser, f"{site}/{name}.html", PHONE)
    try:
        loose = page.evaluate(
            """() => Array.from(document.querySelectorAll('main table')).filter(t => {
                   for (let e = t; e && e.tagName !== 'MAIN'; e = e.parentElement) {
                       const o = getComputedStyle(e).overflowX;
                       if (o === 'auto' || o === 'scroll') return false;
                   }
                   return t.getBoundingClientRect().width > window.innerWidth;
               }).map(t => t.className || t.parentElement.className)"""
        )
        assert not loose, f"{name}: tables wider than the phone with no scroll box of their own: {loose[:5]}"
    finally:
        page.close()


# Figures drawn wider than ~9.8 in put their 10-pt text under 11 px in the column. None is left
# (the last, access-control's two-panel figure, was stacked); a chapter listed here is expected to
# fail (strict), so the mark must go when its figure is fixed.
WIDE_FIGURES: set[str] = set()


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            name,
            marks=pytest.mark.xfail(strict=True, reason="figure wider than the column allows (WIDE_FIGURES)"),
        )
        if name in WIDE_FIGURES
        else name
        for name in toc_files()
        if name.startswith("chapters/")
    ],
)
def test_figure_text_is_legible_on_a_laptop(browser, site, name):
    """The house style's smallest text (10 pt) is >= 11 px as drawn in the column.

    A figure drawn at ``dpi`` shows 10 pt as 10 * dpi / 72 pixels of its image; the browser
    scales the image to the column, so that becomes ``10 * dpi / 72 * shown / natural``.
    """
    dpi = build_dpi()
    page, _ = open_at(browser, f"{site}/{name}.html", LAPTOP)
    try:
        sizes = page.evaluate(
            """() => Array.from(document.querySelectorAll('main figure img, main .cell_output img'))
                   .filter(img => img.naturalWidth > 0)
                   .map(img => [img.currentSrc.split('/').pop(), img.naturalWidth, img.getBoundingClientRect().width])"""
        )
        assert sizes, f"{name} shows no figures"
        small = [
            f"{src}: {10 * dpi / 72 * shown / natural:.1f} px ({natural} px image shown at {shown:.0f})"
            for src, natural, shown in sizes
            if 10 * dpi / 72 * shown / natural < 11
        ]
        assert not small, (
            f"{name}: figure text under 11 px at laptop width (draw the figure narrower): {small}"
        )
    finally:
        page.close()


def test_a_tap_enlarges_a_figure_on_a_phone(browser, site):
    page, problems = open_at(browser, f"{site}/chapters/gc-pauses.html", PHONE)
    try:
        image = page.locator("main figure img").first
        image.scroll_into_view_if_needed()
        natural = image.evaluate("img => img.naturalWidth")
        image.click()
        page.wait_for_function("() => document.getElementById('syslab-lightbox').open", timeout=5_000)
        shown = page.evaluate(
            "() => document.querySelector('#syslab-lightbox img').getBoundingClientRect().width"
        )
        assert shown >= natural / 2 - 1, (
            f"the enlarged figure is {shown:.0f} px for a {natural}-px (2x) image"
        )
        page.keyboard.press("Escape")
        page.wait_for_timeout(200)
        assert not dialog_open(page, "syslab-lightbox")
        assert not problems, problems
    finally:
        page.close()

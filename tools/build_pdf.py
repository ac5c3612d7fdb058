"""The whole book as one PDF, printed from the built HTML by Debian's Chromium (no browser download).

    jupyter-book build .                      # first: the HTML
    python tools/build_pdf.py                 # then: _build/html/the-systems-lab.pdf
    python tools/build_pdf.py --html /tmp/x/_build/html --out book.pdf

Each page the table of contents lists is opened in headless Chromium (driven by Playwright
through its executable path) and printed with the book's print styles (no sidebars, code
wrapped); the pages are then merged in order with pypdf, with one bookmark per page. MathJax
comes from its CDN, as on the web: offline, formulas print as their TeX source.

Budget: the book's HTML is built once; printing is about a second a page.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("SYSLAB_CHROMIUM", "/usr/bin/chromium")
PDF_NAME = "the-systems-lab.pdf"
MAX_PAGES = 200  # toc entries; a bound, not an expectation


def toc_pages(root: Path = ROOT) -> list[str]:
    """Every page the table of contents lists, in reading order (root first), without extension."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    names = [toc["root"]]
    for part in toc.get("parts", []):
        names += [entry["file"] for entry in part.get("chapters", [])]
    return names[:MAX_PAGES]


# Open what readers would open by hand: collapsed code and solutions stay collapsed (the PDF is for
# reading), but the page must have finished rendering its math.
_WAIT_FOR_MATH = """async () => {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
        await Promise.race([MathJax.startup.promise, new Promise(r => setTimeout(r, 5000))]);
    }
}"""


def print_pages(html: Path, pages: list[str], *, timeout_ms: int = 60_000) -> list[tuple[str, bytes]]:
    """(title, PDF bytes) for each page, printed by Chromium from ``html``."""
    from playwright.sync_api import sync_playwright

    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        raise FileNotFoundError(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    printed = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.emulate_media(media="print")
            for name in pages:
                path = html / f"{name}.html"
                if not path.exists():
                    raise FileNotFoundError(f"{path} is missing: build the book first (jupyter-book build .)")
                page.goto(path.as_uri(), wait_until="load", timeout=timeout_ms)
                page.evaluate(_WAIT_FOR_MATH)
                title = page.evaluate(
                    "() => (document.querySelector('main h1') || {}).textContent || document.title"
                )
                title = re.sub(r"[#¶\s]+$", "", " ".join(title.split()))
                pdf = page.pdf(
                    format="A4",
                    print_background=True,
                    margin={"top": "16mm", "bottom": "16mm", "left": "14mm", "right": "14mm"},
                    display_header_footer=True,
                    header_template="<span></span>",
                    footer_template=(
                        '<div style="font-size:8px;width:100%;text-align:center;color:#666">'
                        f"{title} · <span class=pageNumber></span></div>"
                    ),
                )
                printed.append((title, pdf))
        finally:
            browser.close()
    return printed


def merge(printed: list[tuple[str, bytes]], out: Path) -> int:
    """Write the pages into one PDF with a bookmark per page; return its page count."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for title, pdf in printed:
        start = len(writer.pages)
        for sheet in PdfReader(io.BytesIO(pdf)).pages:
            writer.add_page(sheet)
        writer.add_outline_item(title=title, page_number=start)
    writer.add_metadata({"/Title": "The Systems Lab"})
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as handle:
        writer.write(handle)
    return len(writer.pages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--html", type=Path, default=ROOT / "_build" / "html", help="the built book's html folder"
    )
    parser.add_argument("--out", type=Path, default=None, help=f"default: <html>/{PDF_NAME}")
    parser.add_argument("--book", type=Path, default=ROOT, help="the book's source folder (its _toc.yml)")
    args = parser.parse_args(argv)
    out = args.out or args.html / PDF_NAME
    printed = print_pages(args.html.resolve(), toc_pages(args.book))
    sheets = merge(printed, out)
    print(f"{out}: {len(printed)} pages of the book, {sheets} PDF pages, {out.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

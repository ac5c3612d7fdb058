"""The whole book builds with -W from scratch, and every page shows its glued numbers and figures."""

from __future__ import annotations

import ast
import html
import json
import re

import nbformat
import pytest
from conftest import toc_chapters, toc_files
from run_chapter import _FIGURE_GLUE

pytestmark = pytest.mark.slow

_TEXT_GLUE = re.compile(r"\{glue:text\}`([^`:]+)(?::([^`]*))?`")


def page_text(path) -> str:
    raw = path.read_text()
    body = raw[raw.find("<main") :] if "<main" in raw else raw
    return html.unescape(re.sub(r"<[^>]+>", "", body))


def glue_outputs(glue_json) -> dict[str, dict]:
    """myst-nb moves glued outputs out of the executed notebook into ``<name>.glue.json``."""
    return {name: output["data"] for name, output in json.loads(glue_json.read_text()).items()}


def rendered_text(data: dict, spec: str | None) -> str:
    """What myst-nb prints for {glue:text}`key:spec` (its own rule: literal_eval, then format)."""
    plain = next((value for mime, value in data.items() if mime.endswith("text/plain")), None)
    assert plain is not None, "glued value has no text/plain form"
    text = str(plain).strip("'")
    if spec:
        text = format(ast.literal_eval(text), spec)
    return text


def test_build_has_no_warnings(built_book):
    log = (
        (built_book.parents[1] / "build.log").read_text()
        if (built_book.parents[1] / "build.log").exists()
        else ""
    )
    warnings = [line for line in log.splitlines() if "WARNING" in line and "IPKernelApp" not in line]
    assert not warnings, "\n".join(warnings)


def test_every_toc_page_is_built(built_book):
    for name in toc_files():
        assert (built_book / f"{name}.html").exists(), f"no page for {name}"
    assert (built_book / "search.html").exists()


@pytest.mark.parametrize("chapter", toc_chapters(), ids=lambda p: p.stem)
def test_page_shows_its_glued_numbers_and_figures(built_book, chapter):
    source = nbformat.read(str(chapter), as_version=4)
    executed = built_book.parents[1] / "_build" / "jupyter_execute" / "chapters"
    assert (executed / chapter.name).exists(), f"myst-nb did not execute {chapter.name}"
    glued = glue_outputs(executed / f"{chapter.stem}.glue.json")
    text = page_text(built_book / "chapters" / f"{chapter.stem}.html")
    markdown = "\n".join(cell.source for cell in source.cells if cell.cell_type == "markdown")
    checked = 0
    for key, spec in _TEXT_GLUE.findall(markdown):
        if "::" in key:
            continue
        assert key in glued, f"{key} is not glued"
        expected = rendered_text(glued[key], spec or None)
        assert expected in text, f"{chapter.stem}: glued {key} should read {expected!r} on the page"
        checked += 1
    assert checked > 0, "a chapter page should state computed numbers"
    figures = len(_FIGURE_GLUE.findall(markdown))
    page = (built_book / "chapters" / f"{chapter.stem}.html").read_text()
    assert page.count("<img") >= figures, "a glued figure is missing from the page"
    assert "{glue" not in text, "an unresolved glue role reached the page"


def test_internal_links_resolve(built_book):
    """Every relative link and image on every page points at a file the build produced."""
    broken = []
    for page in built_book.rglob("*.html"):
        if "_static" in page.parts or "_sources" in page.parts:
            continue
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r'(?:href|src)="([^"#?]+)(?:[#?][^"]*)?"', text):
            if target.startswith(("http:", "https:", "mailto:", "data:", "javascript:", "//")):
                continue
            if not (page.parent / target).resolve().exists():
                broken.append(f"{page.relative_to(built_book)} -> {target}")
    assert not broken, "broken internal links:\n" + "\n".join(sorted(set(broken))[:50])


def test_pages_fit_the_weight_budget(built_book):
    """A chapter page with the images it embeds stays within DESIGN.md's 2 MB."""
    for page in (built_book / "chapters").glob("*.html"):
        text = page.read_text(encoding="utf-8")
        total = page.stat().st_size
        for src in set(re.findall(r'<img[^>]+src="([^"]+)"', text)):
            image = (page.parent / src).resolve()
            if image.exists():
                total += image.stat().st_size
        assert total <= 2_000_000, f"{page.name} weighs {total / 1e6:.2f} MB with its images"

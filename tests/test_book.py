"""The whole book builds with -W from scratch, and every page shows its glued numbers and figures."""

from __future__ import annotations

import ast
import html
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import nbformat
import pytest
from conftest import ROOT, toc_chapters, toc_files
from run_chapter import _FIGURE_GLUE

pytestmark = pytest.mark.slow

_TEXT_GLUE = re.compile(r"\{glue:text\}`([^`:]+)(?::([^`]*))?`")
_EVAL = re.compile(r"\{eval\}`([^`]*)`")
sys.path.insert(0, str(ROOT / "_ext"))
import syslab_eval  # noqa: E402 - the book's own {eval} reader


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
    text = str(plain)
    if spec:
        return format(ast.literal_eval(text.strip("'")), spec)
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = None
    # A glued string is printed without its quotes, whichever quotes its repr used.
    return value if isinstance(value, str) else text.strip("'")


def straight_quotes(text: str) -> str:
    """``text`` with Sphinx's typographic quotes (smartquotes) turned back into straight ones."""
    return text.translate(str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'}))


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
    text = straight_quotes(page_text(built_book / "chapters" / f"{chapter.stem}.html"))
    markdown = "\n".join(cell.source for cell in source.cells if cell.cell_type == "markdown")
    checked = 0
    for key, spec in _TEXT_GLUE.findall(markdown):
        if "::" in key:
            continue
        assert key in glued, f"{key} is not glued"
        expected = rendered_text(glued[key], spec or None)
        assert straight_quotes(expected) in text, (
            f"{chapter.stem}: glued {key} should read {expected!r} on the page"
        )
        checked += 1
    for expression in _EVAL.findall(markdown):
        expected = ""
        for part in syslab_eval.parse(expression):
            if isinstance(part, str):
                expected += part
                continue
            key, spec = part
            assert key in glued, f"{key} is not glued (notebook.record it)"
            expected += rendered_text(glued[key], spec or None)
        assert straight_quotes(expected) in text, (
            f"{chapter.stem}: {{eval}}`{expression}` should read {expected!r} on the page"
        )
        checked += 1
    assert checked > 0, "a chapter page should state computed numbers"
    figures = len(_FIGURE_GLUE.findall(markdown))
    page = (built_book / "chapters" / f"{chapter.stem}.html").read_text()
    assert page.count("<img") >= figures, "a glued figure is missing from the page"
    assert "{glue" not in text, "an unresolved glue role reached the page"


def test_internal_links_resolve(built_book, book_pdf):
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


# --- Offline copies, the build report, strict claims, the map ------------------------------------


@pytest.fixture(scope="module")
def book_pdf(built_book):
    """The whole-book PDF, printed from the built pages (tools/build_pdf.py), as the workflow does."""
    pdf = built_book / "the-systems-lab.pdf"
    if not pdf.exists():
        result = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "build_pdf.py"), "--html", str(built_book)],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return pdf


def straight(text: str) -> str:
    """Text with Sphinx's typographic quotes made straight again."""
    return text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')


def test_whole_book_pdf_has_every_page_in_order(book_pdf):
    from pypdf import PdfReader

    reader = PdfReader(str(book_pdf))
    titles = [item.title for item in reader.outline]
    assert len(titles) == len(toc_files()), f"{len(titles)} bookmarks for {len(toc_files())} pages"
    for chapter, title in zip(toc_chapters(), titles[1 : 1 + len(toc_chapters())], strict=True):
        first = nbformat.read(str(chapter), as_version=4).cells[0].source.splitlines()[0].lstrip("# ").strip()
        assert straight(title).endswith(straight(first)), (
            f"bookmark {title!r} should be the chapter {first!r}"
        )
    assert len(reader.pages) >= 10 * len(toc_chapters()), "chapters should take pages, not lines"
    assert book_pdf.stat().st_size <= 60_000_000, f"the PDF weighs {book_pdf.stat().st_size / 1e6:.0f} MB"


def test_notebooks_archive_has_every_chapter_and_the_data(built_book):
    archive = built_book / "notebooks.zip"
    assert archive.exists(), "the build writes notebooks.zip (_ext/syslab_book.py)"
    names = set(zipfile.ZipFile(archive).namelist())
    for chapter in toc_chapters():
        assert f"the-systems-lab/chapters/{chapter.name}" in names
    assert "the-systems-lab/requirements.txt" in names
    for data in (ROOT / "data").glob("*.csv"):
        assert f"the-systems-lab/data/{data.name}" in names


def test_build_report_lists_every_chapter_with_its_time(built_book):
    text = page_text(built_book / "build-report.html")
    assert "Python" in text and "jupyter-book" in text
    assert "Commit:" in text
    for chapter in toc_chapters():
        title = nbformat.read(str(chapter), as_version=4).cells[0].source.splitlines()[0].lstrip("# ").strip()
        row = re.search(re.escape(straight(title)) + r"\s+([\d.]+)", straight(text))
        assert row, f"the build report has no execution time for {title!r}"


def test_build_runs_claims_strictly(tmp_path, monkeypatch):
    """_ext/syslab_book.py sets SYSLAB_CLAIMS=strict when Sphinx loads it, before any kernel starts."""
    import syslab_book

    class App:
        doctreedir = str(tmp_path / "doctrees")
        outdir = str(tmp_path / "html")

        def connect(self, *args, **kwargs):
            pass

        def add_role(self, *args, **kwargs):
            pass

    monkeypatch.delenv("SYSLAB_CLAIMS", raising=False)
    monkeypatch.delenv("MATPLOTLIBRC", raising=False)
    syslab_book.setup(App())
    assert os.environ["SYSLAB_CLAIMS"] == "strict"


def _run_claim_notebook(tmp_path, strict: bool):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from syslab import claims\n"
            'claims.check("a pool of 4 beats a pool of 64", holds=False, observed={"p99_ms_4": 9.0, "p99_ms_64": 3.0})'
        )
    ]
    env_before = os.environ.get("SYSLAB_CLAIMS")
    if strict:
        os.environ["SYSLAB_CLAIMS"] = "strict"
    else:
        os.environ.pop("SYSLAB_CLAIMS", None)
    try:
        client = NotebookClient(nb, timeout=120, resources={"metadata": {"path": str(tmp_path)}})
        try:
            client.execute()
        except CellExecutionError as error:
            return nb, str(error)
        return nb, None
    finally:
        if env_before is None:
            os.environ.pop("SYSLAB_CLAIMS", None)
        else:
            os.environ["SYSLAB_CLAIMS"] = env_before


def test_a_false_claim_fails_a_strict_run_and_names_the_claim(tmp_path):
    _, error = _run_claim_notebook(tmp_path, strict=True)
    assert error is not None, "a false claim must fail the book build"
    assert "ClaimFailed" in error and "a pool of 4 beats a pool of 64" in error


def test_a_false_claim_shows_a_note_in_a_readers_run(tmp_path):
    nb, error = _run_claim_notebook(tmp_path, strict=False)
    assert error is None
    shown = json.dumps(nb.cells[0].outputs)
    assert "On this machine" in shown and "a pool of 4 beats a pool of 64" in shown


def test_book_map_regenerates_the_toc_as_committed(tmp_path):
    """tools/book_map.py writes _toc.yml and intro.md's map; running it changes neither."""
    (tmp_path / "tools").mkdir()
    shutil.copy(ROOT / "tools" / "book_map.py", tmp_path / "tools" / "book_map.py")
    shutil.copy(ROOT / "intro.md", tmp_path / "intro.md")
    (tmp_path / "chapters").mkdir()
    for chapter in (ROOT / "chapters").glob("*.ipynb"):
        (tmp_path / "chapters" / chapter.name).write_text("{}")
    subprocess.run([sys.executable, str(tmp_path / "tools" / "book_map.py")], check=True, timeout=60)
    assert (tmp_path / "_toc.yml").read_text() == (ROOT / "_toc.yml").read_text()
    assert (tmp_path / "intro.md").read_text() == (ROOT / "intro.md").read_text()


@pytest.mark.parametrize(
    ("expression", "parts"),
    [
        ('f"{recorded.x:.1f}"', [("x", ".1f")]),
        ('f"{recorded.n:,d} objects"', [("n", ",d"), " objects"]),
        ("recorded.name", [("name", "")]),
    ],
)
def test_eval_expressions_the_book_can_render(expression, parts):
    assert syslab_eval.parse(expression) == parts


@pytest.mark.parametrize(
    "expression", ["x + 1", 'f"{x:.1f}"', "recorded.x()", 'f"{recorded.x!r}"', "import os"]
)
def test_eval_expressions_the_book_refuses(expression):
    with pytest.raises(syslab_eval.EvalSyntaxError):
        syslab_eval.parse(expression)


def test_chapters_were_executed_in_parallel_before_reading(built_book):
    """_ext/syslab_prebuild.py filled the cache, so Sphinx took the chapters from it.

    By design a chapter whose pre-execution failed (a lost kernel reply, a cell over 120 s under
    load) is executed again by Sphinx, which has the last word: the build passed, so it ran there.
    The pre-execution must have run, served all but at most one chapter, and logged why it did not
    serve that one (the exception and its message, so a flaky chapter can be told from a broken one).
    """
    log_path = built_book.parents[1] / "build.log"
    if not log_path.exists():
        pytest.skip("reused build (SYSLAB_BOOK_HTML) without its log")
    log = log_path.read_text()
    assert "[syslab] executing" in log, "the parallel pre-execution did not run"
    executed_on_read = [
        chapter.name for chapter in toc_chapters() if f"{chapter.name}: Executing notebook" in log
    ]
    assert len(executed_on_read) <= 1, f"Sphinx executed these itself (cache miss): {executed_on_read}"
    for name in executed_on_read:
        assert f"[syslab] {name} failed here (" in log, f"{name} missed the cache with no reason logged"


def test_published_pages_launch_and_download_the_commit_they_were_built_from(built_book):
    # The test build is a published build (tests/conftest.py): Binder launches the commit, Colab
    # opens the pinned-notebooks branch, and every notebook offered for download installs the
    # library at the commit; the edit link still edits the branch.
    from conftest import PUBLISHED_COLAB_REF, PUBLISHED_COMMIT

    page = (built_book / "chapters" / "c10k.html").read_text()
    binder = re.findall(r'href="(https://mybinder\.org/v2/gh/[^"]+)"', page)
    colab = re.findall(r'href="(https://colab\.research\.google\.com/github/[^"]+)"', page)
    assert binder and all(f"/{PUBLISHED_COMMIT}?" in html.unescape(url) for url in binder), binder
    assert colab and all(f"/blob/{PUBLISHED_COLAB_REF}/chapters/c10k.ipynb" in url for url in colab), colab
    assert re.search(r'href="https://github\.com/[^"]+/edit/main/chapters/c10k\.ipynb"', page)
    pinned = f'@{PUBLISHED_COMMIT}\\"'
    download = built_book / "_sources" / "chapters" / "c10k.ipynb"
    assert download.exists() and pinned in download.read_text()
    archive = zipfile.ZipFile(built_book / "notebooks.zip")
    assert pinned in archive.read("the-systems-lab/chapters/c10k.ipynb").decode()

"""Conventions a test can check: no stored outputs, the cell layout, short cells, ruff, references."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, all_chapter_notebooks, toc_files
from set_repository import COLAB_TAG, colab_cell_source

NOTEBOOKS = all_chapter_notebooks()
MAX_CELL_LINES = 15


def code_cells(path: Path):
    nb = nbformat.read(str(path), as_version=4)
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_no_outputs(path):
    for cell in code_cells(path):
        assert not cell.get("outputs"), f"{path.name} has stored outputs: strip them"
        assert cell.get("execution_count") is None, f"{path.name} has execution counts: strip them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_cell_layout(path):
    cells = code_cells(path)
    assert "parameters" in tags(cells[0]), "the first code cell must be tagged 'parameters'"
    colab = [cell for cell in cells if COLAB_TAG in tags(cell)]
    assert len(colab) == 1, "exactly one Colab install cell (tools/new_chapter.py makes it)"
    assert colab[0].source == colab_cell_source(), (
        "Colab cell disagrees with _config.yml: run tools/set_repository.py"
    )
    assert "remove-cell" in tags(colab[0])
    assert cells[1] is colab[0], "the Colab install cell comes right after the parameters"
    assert "hide-input" in tags(cells[2]) or "remove-input" in tags(cells[2]), (
        "the setup cell hides its input"
    )
    assert "use_style()" in cells[2].source, "the setup cell applies the house style"
    nb = nbformat.read(str(path), as_version=4)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    title = nb.cells[0].source.splitlines()[0]
    assert title.startswith("# "), "the first cell is the chapter title"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_cells_are_short(path):
    for cell in code_cells(path):
        if COLAB_TAG in tags(cell) or "parameters" in tags(cell):
            continue  # the install boilerplate, and the list of knobs, are not logic
        lines = [line for line in cell.source.splitlines() if line.strip()]
        assert len(lines) <= MAX_CELL_LINES, (
            f"{path.name}: a {len(lines)}-line cell; longer than {MAX_CELL_LINES} lines belongs in syslab:\n"
            + cell.source[:300]
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_widgets_never_reach_the_web_page(path):
    for cell in code_cells(path):
        if re.search(r"\binteract(_manual)?\(|\binteractive\(|widgets\.", cell.source):
            assert "remove-output" in tags(cell) or "remove-cell" in tags(cell), (
                f"{path.name}: a widget cell must be tagged remove-output (no dead sliders on the page)"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_global_seeding(path):
    for cell in code_cells(path):
        assert not re.search(r"np\.random\.seed\(|random\.seed\(", cell.source), (
            "pass seeds in; never seed globally"
        )


def test_library_never_seeds_globally():
    for path in (ROOT / "src" / "syslab").glob("*.py"):
        text = path.read_text()
        assert not re.search(r"np\.random\.seed\(|\brandom\.seed\(", text), path.name


def test_toc_lists_exactly_the_chapters():
    listed = {name for name in toc_files() if name.startswith("chapters/")}
    present = {f"chapters/{p.stem}" for p in NOTEBOOKS}
    assert listed <= present, f"_toc.yml lists missing chapters: {sorted(listed - present)}"
    assert present <= listed, f"chapters not in _toc.yml: {sorted(present - listed)}"


def bib_keys() -> list[str]:
    return re.findall(r"^@\w+\{([^,\s]+),", (ROOT / "references.bib").read_text(), re.MULTILINE)


def test_bibliography_parses():
    # Entries are merged from parallel branches with a union merge, which can drop a closing brace.
    from pybtex.database import parse_file

    assert len(parse_file(str(ROOT / "references.bib")).entries) == len(bib_keys())


def test_bibliography_keys_are_unique():
    keys = bib_keys()
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    assert not duplicates, f"duplicate references.bib keys: {duplicates}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_citations_exist_and_chapter_has_references(path):
    nb = nbformat.read(str(path), as_version=4)
    text = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    cited = set()
    for group in re.findall(r"\{(?:foot)?cite(?::\w+)?\}`([^`]+)`", text):
        cited.update(key.strip() for key in group.split(","))
    cited = {key for key in cited if key}
    missing = cited - set(bib_keys())
    assert not missing, f"{path.name} cites keys not in references.bib: {sorted(missing)}"
    assert cited, f"{path.name} cites no sources"
    assert "{footbibliography}" in text, f"{path.name} has no references section"


def test_ruff_is_clean():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed: pip install -r requirements-dev.txt")
    result = subprocess.run(
        [ruff, "check", "src", "tests", "tools", "chapters"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run(
        [ruff, "format", "--check", "src", "tests", "tools", "chapters"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr

"""One notebook idiom across the 23 chapters (CONTRIBUTING.md, "The chapters").

Bookkeeping never shows on the web page, the first screen says what the chapter teaches before
any code, every chapter shows the model behind its main figure, module names are spelled out,
and a chapter reads its data from the installed package.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from conftest import all_chapter_notebooks

NOTEBOOKS = all_chapter_notebooks()
HIDDEN = {"remove-cell"}
READER_COMMENT = "# Change these and rerun"


def cells(path):
    return nbformat.read(str(path), as_version=4).cells


def tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_direct_glue_and_bookkeeping_cells_are_hidden(path):
    for cell in cells(path):
        if cell.cell_type != "code":
            continue
        assert not re.search(r"(^|[^.\w])glue\(", cell.source), (
            f"{path.name}: call notebook.record / notebook.figure, not glue():\n{cell.source[:200]}"
        )
        if re.search(r"notebook\.(record|figure)\(", cell.source):
            assert tags(cell) & HIDDEN, (
                f"{path.name}: a bookkeeping cell must be tagged remove-cell:\n{cell.source[:200]}"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_full_module_names_and_packaged_data(path):
    for cell in cells(path):
        if cell.cell_type != "code":
            continue
        assert not re.search(r"from syslab import [^\n]*\bas\b|import syslab\.\w+ as", cell.source), (
            f"{path.name}: spell module names out (no `as` aliases)"
        )
        assert "../data" not in cell.source, f"{path.name}: read data with syslab.datasets.read_csv"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_screen_then_a_parameters_cell_for_the_reader(path):
    all_cells = cells(path)
    first_code = next(i for i, cell in enumerate(all_cells) if cell.cell_type == "code")
    opening = "\n".join(cell.source for cell in all_cells[:first_code] if cell.cell_type == "markdown")
    words = len(re.sub(r"^# .*$", "", opening, count=1, flags=re.M).split())
    assert words >= 40, (
        f"{path.name}: the first screen (before any code) has {words} words; say what it teaches"
    )
    parameters = all_cells[first_code]
    assert {"parameters", "hide-input"} <= tags(parameters), f"{path.name}: parameters cell tags"
    assert parameters.source.lstrip().startswith(READER_COMMENT), (
        f"{path.name}: the parameters cell's first comment talks to the reader ({READER_COMMENT!r}...)"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_model_behind_the_main_figure_is_shown(path):
    text = "\n".join(cell.source for cell in cells(path) if cell.cell_type == "markdown")
    assert re.search(r"\{dropdown\} The model", text), f"{path.name}: no collapsed 'The model' block"
    assert re.search(r"\{literalinclude\} \.\./src/syslab/\w+\.py\s*\n:pyobject:", text), (
        f"{path.name}: 'The model' should literalinclude library code with :pyobject:"
    )

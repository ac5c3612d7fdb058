"""Every chapter executes top to bottom with small injected parameters, and glues what its prose uses."""

from __future__ import annotations

import pytest
from conftest import all_chapter_notebooks
from run_chapter import execute_chapter, read_notebook, small_parameters


@pytest.mark.parametrize("path", all_chapter_notebooks(), ids=lambda p: p.stem)
def test_chapter_executes_with_small_parameters(path):
    nb = read_notebook(path)
    assert small_parameters(nb), f"{path.name} has no syslab.test_parameters metadata to keep the test fast"
    run = execute_chapter(path, timeout_s=300)
    assert not run.missing, f"prose refers to glue keys no cell produced: {sorted(run.missing)}"
    assert not run.stderr, "cells wrote to stderr (the book build fails on it):\n" + "\n".join(run.stderr)
    assert run.referenced, "a chapter's prose should state numbers computed by its code (glue them)"

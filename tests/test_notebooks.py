"""Every chapter executes top to bottom with small injected parameters, and glues what its prose uses."""

from __future__ import annotations

import pytest
from conftest import all_chapter_notebooks
from nbclient.exceptions import CellTimeoutError
from run_chapter import execute_chapter, read_notebook, small_parameters


@pytest.mark.parametrize("path", all_chapter_notebooks(), ids=lambda p: p.stem)
def test_chapter_executes_with_small_parameters(path):
    nb = read_notebook(path)
    assert small_parameters(nb), f"{path.name} has no syslab.test_parameters metadata to keep the test fast"
    try:
        run = execute_chapter(path, timeout_s=120)
    except CellTimeoutError:
        # Rarely, under load, ipykernel 7 loses a reply and nbclient waits for ever on a cell
        # the kernel has finished (the kernel sits idle); no chapter cell needs 120 s at test
        # size. A fresh kernel once, so that a kernel hang is not a chapter failure.
        run = execute_chapter(path, timeout_s=120)
    assert not run.missing, f"prose refers to glue keys no cell produced: {sorted(run.missing)}"
    assert not run.stderr, "cells wrote to stderr (the book build fails on it):\n" + "\n".join(run.stderr)
    assert run.referenced, "a chapter's prose should state numbers computed by its code (glue them)"

"""Shared fixtures: the book's chapters, and one full book build per test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))  # run_chapter, set_repository


SLOW_TEST_TIMEOUT_S = 1800


def pytest_collection_modifyitems(config, items):
    """Slow tests (a whole-book build, a browser) get the long timeout; the rest keep 300 s."""
    for item in items:
        if item.get_closest_marker("slow") is not None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SLOW_TEST_TIMEOUT_S))


def toc_files() -> list[str]:
    """Every file the table of contents lists (root first), without extension."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [entry["file"] for entry in part.get("chapters", [])]
    return files


def toc_chapters() -> list[Path]:
    """The chapter notebooks listed in _toc.yml."""
    return [ROOT / f"{name}.ipynb" for name in toc_files() if name.startswith("chapters/")]


# The commit and branch the test build pretends to publish (any full commit id will do).
PUBLISHED_COMMIT = "0123456789abcdef0123456789abcdef01234567"
PUBLISHED_COLAB_REF = "colab-pages"


def all_chapter_notebooks() -> list[Path]:
    return sorted((ROOT / "chapters").glob("*.ipynb"))


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    """Build the whole book from scratch with -W into a temporary folder; return its html folder.

    A clean folder matters: an unchanged second build re-reads nothing and can hide a
    broken notebook. Set SYSLAB_BOOK_HTML to reuse an existing build while iterating.
    """
    reuse = os.environ.get("SYSLAB_BOOK_HTML")
    if reuse:
        return Path(reuse)
    jupyter_book = shutil.which("jupyter-book")
    if jupyter_book is None:
        pytest.fail("jupyter-book is not installed: pip install -r requirements-dev.txt")
    out = tmp_path_factory.mktemp("book")
    # Built as the publishing workflow builds it (.github/workflows/book.yml): launch links and
    # downloads pinned to a commit, Colab links to the pinned-notebooks branch. Only links and
    # install cells differ from a local build; tests/test_book.py checks them.
    published = {"SYSLAB_BUILD_COMMIT": PUBLISHED_COMMIT, "SYSLAB_COLAB_REF": PUBLISHED_COLAB_REF}
    result = subprocess.run(
        [jupyter_book, "build", str(ROOT), "--path-output", str(out), "-W", "--keep-going"],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, **published},
    )
    log = result.stdout + result.stderr
    (out / "build.log").write_text(log)
    if result.returncode != 0:
        reports = "\n".join(
            p.read_text()[-3000:] for p in (out / "_build" / "html" / "reports").glob("*.log")
        )
        pytest.fail(f"jupyter-book build failed (rc={result.returncode}):\n{log[-6000:]}\n{reports}")
    return out / "_build" / "html"

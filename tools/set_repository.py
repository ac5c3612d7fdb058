"""Copy the repository URL from _config.yml into every chapter's Colab install cell.

_config.yml's ``repository.url`` is the one place the repository is named. Colab
opens a chapter without the repository around it, so each chapter carries a cell
(tagged ``remove-cell``: it runs but is not shown on the web page) that installs
``syslab`` from that URL when the import fails. After changing the URL, run::

    python tools/set_repository.py

A test (tests/test_hygiene.py) fails if any chapter disagrees with _config.yml.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
COLAB_TAG = "colab-install"

# ruff format leaves this exact text unchanged, so formatting a chapter never breaks the match.
COLAB_CELL_TEMPLATE = """\
# Colab opens this notebook without the repository around it: install the book's library first
# (about a minute; pip shows its progress). It comes from the branch the book is published from.
try:
    import syslab  # noqa: F401
except ImportError:
    import subprocess
    import sys

    package = "syslab @ git+{url}@{ref}"
    print(f"Installing {{package}} ...", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--progress-bar", "on", package], check=True)"""


def repository_url() -> str:
    """``repository.url`` from _config.yml (read without a YAML dependency)."""
    text = (ROOT / "_config.yml").read_text()
    match = re.search(r"^repository:\s*\n(?:[ \t]+.*\n)*?[ \t]+url:\s*(\S+)", text, re.MULTILINE)
    if not match:
        raise ValueError("_config.yml has no repository.url")
    return match.group(1).strip("'\"")


def repository_branch() -> str:
    """``repository.branch`` from _config.yml (the branch the book is published from)."""
    text = (ROOT / "_config.yml").read_text()
    match = re.search(r"^repository:\s*\n(?:[ \t]+.*\n)*?[ \t]+branch:\s*(\S+)", text, re.MULTILINE)
    return match.group(1).strip("'\"") if match else "main"


def colab_cell_source(url: str | None = None, ref: str | None = None) -> str:
    """The exact source of the Colab install cell for ``url`` at ``ref`` (default: _config.yml's)."""
    return COLAB_CELL_TEMPLATE.format(url=url or repository_url(), ref=ref or repository_branch())


def colab_cell() -> nbformat.NotebookNode:
    """A new Colab install cell, tagged so the web page hides it."""
    return nbformat.v4.new_code_cell(colab_cell_source(), metadata={"tags": ["remove-cell", COLAB_TAG]})


def main() -> int:
    source = colab_cell_source()
    changed = 0
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            if COLAB_TAG in cell.get("metadata", {}).get("tags", []) and cell.source != source:
                cell.source = source
                nbformat.write(nb, str(path))
                changed += 1
                break
    print(f"{changed} chapter(s) updated to {repository_url()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Copy the repository URL from _config.yml into every chapter's Colab install cell.

_config.yml's ``repository.url`` is the one place the repository is named. Colab
opens a chapter without the repository around it, so each chapter carries a cell
(tagged ``remove-cell``: it runs but is not shown on the web page) that installs
``syslab`` from that URL when the import fails. After changing the URL, run::

    python tools/set_repository.py

A test (tests/test_hygiene.py) fails if any chapter disagrees with _config.yml.

The committed chapters install from the branch (``repository.branch``), because a commit
cannot name itself. The publishing workflow pins them: it runs::

    python tools/set_repository.py --ref <commit>

on its own checkout, so that every install cell names the commit the pages were built
from, and pushes the result to the branch the site's Colab buttons open (see
_ext/syslab_publish.py, which also pins the downloadable notebooks and the Binder links).
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
# (about a minute; pip shows its progress). {origin}
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


# What the second comment line says of the library's origin: the branch (committed chapters) or
# the commit the published page was built from (pinned copies).
BRANCH_ORIGIN = "It comes from the branch the book is published from."
COMMIT_ORIGIN = "It comes from the commit this page was built from."
COMMIT_PATTERN = re.compile(r"[0-9a-f]{40}")


def colab_cell_source(url: str | None = None, ref: str | None = None) -> str:
    """The exact source of the Colab install cell for ``url`` at ``ref`` (default: _config.yml's).

    A ``ref`` that is a full commit id gets the pinned wording; any other ref (a branch) the
    branch wording.
    """
    ref = ref or repository_branch()
    origin = COMMIT_ORIGIN if COMMIT_PATTERN.fullmatch(ref) else BRANCH_ORIGIN
    return COLAB_CELL_TEMPLATE.format(url=url or repository_url(), ref=ref, origin=origin)


def pin_notebook(nb: nbformat.NotebookNode, commit: str, url: str | None = None) -> bool:
    """Point ``nb``'s Colab install cell at ``commit``; True if the notebook has such a cell.

    Raises ValueError unless ``commit`` is a full 40-hex-digit commit id (a branch or an
    abbreviated id would not pin anything).
    """
    if not isinstance(commit, str) or not COMMIT_PATTERN.fullmatch(commit):
        raise ValueError(f"commit must be a full 40-hex-digit commit id, got {commit!r}")
    for cell in nb.cells:
        if COLAB_TAG in cell.get("metadata", {}).get("tags", []):
            cell.source = colab_cell_source(url, commit)
            return True
    return False


def colab_cell() -> nbformat.NotebookNode:
    """A new Colab install cell, tagged so the web page hides it."""
    return nbformat.v4.new_code_cell(colab_cell_source(), metadata={"tags": ["remove-cell", COLAB_TAG]})


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ref",
        help="a full commit id to pin every install cell to (the publishing workflow's copy only;"
        " committed chapters keep the branch)",
    )
    args = parser.parse_args(argv)
    source = colab_cell_source(ref=args.ref)
    changed = 0
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            if COLAB_TAG in cell.get("metadata", {}).get("tags", []) and cell.source != source:
                cell.source = source
                nbformat.write(nb, str(path))
                changed += 1
                break
    print(f"{changed} chapter(s) updated to {repository_url()} at {args.ref or repository_branch()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

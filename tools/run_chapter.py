"""Execute a chapter notebook the way the tests and the benchmark do.

A chapter's first code cell is tagged ``parameters`` and holds its knobs at full
size. The notebook's metadata carries the small values the tests inject::

    "metadata": {"syslab": {"test_parameters": {"N_REQUESTS": 2000, "POOL_SIZES": [4, 8]}}}

``execute_chapter`` inserts a cell after the parameters cell that overrides them
(the papermill convention, without papermill), runs the notebook in a fresh
kernel with ``chapters/`` as the working directory, and reports which glue keys
were produced and which keys the prose refers to.

Command line::

    python tools/run_chapter.py chapters/connection-pools.ipynb           # small parameters
    python tools/run_chapter.py chapters/connection-pools.ipynb --full    # the book's parameters
    python tools/run_chapter.py chapters/connection-pools.ipynb --save /tmp/out.ipynb
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"

# {glue:text}`key:.2f`, {glue:}`key`, {glue}`key`, {glue:md}`key`, ```{glue:figure} key
_INLINE_GLUE = re.compile(r"\{glue(?::(?:text|md|any|))?\}`([^`]+)`")
_FIGURE_GLUE = re.compile(r"^[`:]{3,}\{glue(?::figure)?\}\s+(\S+)", re.MULTILINE)
# {eval}`f"{recorded.key:.1f}"` / {eval}`recorded.key` (the JupyterLab-friendly idiom, tools/notebook_idiom.py)
_EVAL_KEY = re.compile(r"\{eval\}`[^`]*`")
_RECORDED_KEY = re.compile(r"\brecorded\.([A-Za-z_][A-Za-z0-9_]*)")


@dataclass
class ChapterRun:
    """What one execution of a chapter produced."""

    path: Path
    notebook: nbformat.NotebookNode
    seconds: float
    glued: set[str] = field(default_factory=set)
    referenced: set[str] = field(default_factory=set)

    @property
    def stderr(self) -> list[str]:
        """Text a cell wrote to stderr (warnings): the book build treats it as an error."""
        found = []
        for cell in self.notebook.cells:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    found.append(output.get("text", ""))
        return found

    @property
    def missing(self) -> set[str]:
        """Keys the prose refers to that no cell glued."""
        return self.referenced - self.glued


def read_notebook(path: str | Path) -> nbformat.NotebookNode:
    """Read a notebook as nbformat version 4."""
    return nbformat.read(str(path), as_version=4)


def parameters_cell_index(nb: nbformat.NotebookNode) -> int:
    """Index of the first code cell, which must be tagged ``parameters``."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            if "parameters" not in cell.get("metadata", {}).get("tags", []):
                raise ValueError("the first code cell must be tagged 'parameters'")
            return index
    raise ValueError("the notebook has no code cell")


def small_parameters(nb: nbformat.NotebookNode) -> dict:
    """The small parameter values stored in the notebook's ``syslab.test_parameters`` metadata."""
    return dict(nb.metadata.get("syslab", {}).get("test_parameters", {}))


def with_parameters(nb: nbformat.NotebookNode, values: dict) -> nbformat.NotebookNode:
    """A copy of ``nb`` with a cell after the parameters cell that assigns ``values``."""
    result = copy.deepcopy(nb)
    if not values:
        return result
    index = parameters_cell_index(result)
    source = "\n".join(f"{name} = {value!r}" for name, value in values.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    result.cells.insert(index + 1, cell)
    return result


def referenced_glue_keys(nb: nbformat.NotebookNode) -> set[str]:
    """Glue keys the markdown cells refer to on this page (``page::key`` references excluded)."""
    keys: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for match in _INLINE_GLUE.finditer(cell.source):
            keys.add(match.group(1).split(":")[0] if "::" not in match.group(1) else "")
        for match in _FIGURE_GLUE.finditer(cell.source):
            keys.add(match.group(1))
        for match in _EVAL_KEY.finditer(cell.source):
            keys.update(_RECORDED_KEY.findall(match.group(0)))
    keys.discard("")
    return keys


def glued_keys(nb: nbformat.NotebookNode) -> set[str]:
    """Glue keys present in an executed notebook's outputs (myst-nb's ``scrapbook`` metadata)."""
    keys = set()
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                keys.add(name)
    return keys


def execute_chapter(
    path: str | Path, *, full: bool = False, timeout_s: int = 600, parameters: dict | None = None
) -> ChapterRun:
    """Execute a chapter in a fresh kernel; raise ``nbclient`` errors on any failing cell.

    Parameters
    ----------
    path : path-like
        The chapter notebook.
    full : bool
        Run with the book's own parameters instead of the small test ones.
    timeout_s : int
        Per-cell timeout in seconds.
    parameters : dict, optional
        Values to inject instead of the notebook's test parameters.
    """
    path = Path(path)
    nb = read_notebook(path)
    values = {} if full else (parameters if parameters is not None else small_parameters(nb))
    runnable = with_parameters(nb, values)
    client = NotebookClient(
        runnable,
        timeout=timeout_s,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    started = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - started
    return ChapterRun(path, runnable, seconds, glued_keys(runnable), referenced_glue_keys(nb))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--full", action="store_true", help="use the book's parameters")
    parser.add_argument("--save", type=Path, help="write the executed notebook here")
    args = parser.parse_args(argv)
    run = execute_chapter(args.notebook, full=args.full)
    if args.save:
        nbformat.write(run.notebook, str(args.save))
    print(f"{args.notebook}: executed in {run.seconds:.1f} s; {len(run.glued)} glue keys")
    status = 0
    if run.missing:
        print(f"MISSING glue keys referenced in the prose: {sorted(run.missing)}")
        status = 1
    if run.stderr:
        print("STDERR output (the book build fails on it):\n" + "\n".join(run.stderr))
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())

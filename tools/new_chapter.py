"""Create a new chapter notebook with the book's skeleton.

    python tools/new_chapter.py my-slug "My Chapter Title"

writes ``chapters/my-slug.ipynb`` with: the title and the first screen to fill in, the
parameters cell (tagged ``parameters`` and ``hide-input``, its comment to the reader), the
hidden Colab install cell, the setup cell (``hide-input``), the section headings of
../shared/CHAPTER.md's anatomy with "The model" block, an empty
``syslab.test_parameters`` entry in the notebook metadata, and no outputs.
Then fill it in (jupytext round-trips it to a percent script and back:
``jupytext --to py:percent chapters/my-slug.ipynb`` ...
``jupytext --to ipynb --update chapters/my-slug.py``) and add it to _toc.yml.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from set_repository import colab_cell  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

FIRST_SCREEN = """\
**The question.** (What a reader asks when they arrive with the symptom, in one sentence.)

**The answer in one line.** (Glued from the chapter's result where it is one:
{eval}`f"{recorded.headline:.1f}"`.)

**What you will watch and run.** (The simulation and the real experiment, in two sentences:
what the figures show and what runs on the reader's machine.)"""

MODEL_BLOCK = """\
:::{dropdown} The model behind the main figure
```{literalinclude} ../src/syslab/CONCEPT.py
:pyobject: simulate_CONCEPT
```
:::"""

SECTIONS = [
    "## The symptom",
    "## The mechanism",
    "## Watch it happen",
    MODEL_BLOCK,
    "## Check it against theory",
    "## Run it for real",
    "## What to do in production",
    "## Try it",
    "## Exercises",
    "## References\n\n```{footbibliography}\n```",
]


def new_notebook(title: str) -> nbformat.NotebookNode:
    """A skeleton chapter notebook (no outputs)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["syslab"] = {"test_parameters": {}}
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {title}\n\n{FIRST_SCREEN}"),
        nbformat.v4.new_code_cell(
            "# Change these and rerun the chapter (Run ▸ Run All). Full size; the tests inject smaller values.\n"
            "SEED = 0  # the seed behind every figure",
            metadata={"tags": ["parameters", "hide-input"]},
        ),
        colab_cell(),
        nbformat.v4.new_code_cell(
            "from syslab import claims, experiment, notebook, plot\n"
            "from syslab.notebook import recorded  # noqa: F401\n\nplot.use_style()",
            metadata={"tags": ["hide-input"]},
        ),
        *[nbformat.v4.new_markdown_cell(section) for section in SECTIONS],
    ]
    return nb


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    slug, title = argv
    path = ROOT / "chapters" / f"{slug}.ipynb"
    if path.exists():
        print(f"{path} exists; not overwriting")
        return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(title), str(path))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

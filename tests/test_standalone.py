"""A chapter runs alone: copied out of the repository, against a non-editable install of syslab.

Colab and a reader who downloads one notebook have no repository around the chapter: no
``../data``, no ``src/``. The chapter must find everything it reads inside the installed package.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import ROOT
from run_chapter import execute_chapter

# The chapter that reads a shipped data set (the latency ladder).
CHAPTER = "cache-stack"


@pytest.mark.real
def test_a_chapter_runs_from_an_empty_folder_against_an_installed_package(tmp_path, monkeypatch):
    site = tmp_path / "site"
    # Install from a copy, so the build leaves no build/ folder in the checkout.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(source),
        ],
        check=True,
        timeout=240,
        capture_output=True,
    )
    assert (site / "syslab" / "data" / "latency_ladder.csv").exists(), (
        "the data did not ship with the package"
    )
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(ROOT / "chapters" / f"{CHAPTER}.ipynb", alone / f"{CHAPTER}.ipynb")
    # The installed copy comes first on the path, ahead of the editable install of this checkout.
    monkeypatch.setenv("PYTHONPATH", str(site))
    run = execute_chapter(alone / f"{CHAPTER}.ipynb", timeout_s=300)
    assert not run.missing
    where = subprocess.run(
        [sys.executable, "-c", "import syslab; print(syslab.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert where.startswith(str(site)), f"the kernel would import syslab from {where}, not the installed copy"

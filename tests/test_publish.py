"""Published pages hand readers the library of the commit they were built from (_ext/syslab_publish.py).

The unit tests here need no build; tests/test_book.py checks the links and downloads of the
test build, which is built as the publishing workflow builds (tests/conftest.py).
"""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "_ext"))
sys.path.insert(0, str(ROOT / "tools"))

import set_repository  # noqa: E402
import syslab_publish  # noqa: E402

COMMIT = "89abcdef0123456789abcdef0123456789abcdef"
BINDER = "https://mybinder.org/v2/gh/org/repo/main?urlpath=lab/tree/chapters/c10k.ipynb"
COLAB = "https://colab.research.google.com/github/org/repo/blob/main/chapters/c10k.ipynb"


def test_binder_launches_the_commit_and_colab_the_pinned_branch():
    pins = {"branch": "main", "commit": COMMIT, "colab_ref": "colab-pages"}
    assert syslab_publish.pinned_launch_url(BINDER, **pins) == BINDER.replace("/main?", f"/{COMMIT}?")
    assert syslab_publish.pinned_launch_url(COLAB, **pins) == COLAB.replace(
        "/blob/main/", "/blob/colab-pages/"
    )
    # Other links (the repository, edit, issues) keep the branch; unset pins change nothing.
    edit = "https://github.com/org/repo/edit/main/chapters/c10k.ipynb"
    assert syslab_publish.pinned_launch_url(edit, **pins) == edit
    none = {"branch": "main", "commit": None, "colab_ref": None}
    assert syslab_publish.pinned_launch_url(BINDER, **none) == BINDER
    assert syslab_publish.pinned_launch_url(COLAB, **none) == COLAB


def test_nested_launch_buttons_are_rewritten():
    buttons = [{"type": "group", "buttons": [{"url": BINDER}, {"url": COLAB}]}, {"url": "https://x/y"}]
    syslab_publish._rewrite_buttons(buttons, branch="main", commit=COMMIT, colab_ref="colab-pages")
    assert COMMIT in buttons[0]["buttons"][0]["url"]
    assert "/blob/colab-pages/" in buttons[0]["buttons"][1]["url"]
    assert buttons[1]["url"] == "https://x/y"


def test_pinning_a_chapter_names_the_commit_in_its_install_cell():
    nb = nbformat.read(str(ROOT / "chapters" / "c10k.ipynb"), as_version=4)
    assert set_repository.pin_notebook(nb, COMMIT)
    cell = next(c for c in nb.cells if set_repository.COLAB_TAG in c.metadata.get("tags", []))
    assert f'@{COMMIT}"' in cell.source and set_repository.COMMIT_ORIGIN in cell.source
    assert "@main" not in cell.source


@pytest.mark.parametrize("bad", ["main", COMMIT[:12], COMMIT.upper(), "", None, 7])
def test_pinning_needs_a_full_commit_id(bad):
    nb = nbformat.v4.new_notebook()
    with pytest.raises(ValueError, match="commit"):
        set_repository.pin_notebook(nb, bad)


def test_a_malformed_build_commit_fails_loudly(monkeypatch):
    monkeypatch.setenv("SYSLAB_BUILD_COMMIT", "main")
    with pytest.raises(ValueError, match="SYSLAB_BUILD_COMMIT"):
        syslab_publish.build_commit()
    monkeypatch.setenv("SYSLAB_BUILD_COMMIT", "")
    assert syslab_publish.build_commit() is None


def test_the_workflow_copy_pins_every_chapter(tmp_path):
    # What the publishing workflow runs, on a copy of the repository's chapters and config.
    (tmp_path / "tools").mkdir()
    (tmp_path / "chapters").mkdir()
    (tmp_path / "tools" / "set_repository.py").write_text((ROOT / "tools" / "set_repository.py").read_text())
    (tmp_path / "_config.yml").write_text((ROOT / "_config.yml").read_text())
    for name in ("c10k.ipynb", "soft-delete.ipynb"):
        (tmp_path / "chapters" / name).write_text((ROOT / "chapters" / name).read_text())
    script = tmp_path / "tools" / "set_repository.py"
    done = subprocess.run(
        [sys.executable, str(script), "--ref", COMMIT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "2 chapter(s) updated" in done.stdout
    for path in (tmp_path / "chapters").glob("*.ipynb"):
        nb = nbformat.read(str(path), as_version=4)
        sources = [c.source for c in nb.cells if set_repository.COLAB_TAG in c.metadata.get("tags", [])]
        assert len(sources) == 1 and f'@{COMMIT}"' in sources[0], path.name

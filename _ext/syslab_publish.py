"""Pin what a published page hands to readers to the commit the page was built from.

A page's numbers were computed by the library at one commit. A reader who launches the page in
Binder or Colab, or downloads its notebook, should get that library, not whatever the branch
holds by the time they click. Local builds change nothing; the publishing workflow
(.github/workflows/book.yml) sets two environment variables:

``SYSLAB_BUILD_COMMIT``
    The commit the pages are built from (40 hex digits). Binder links launch that commit (Binder
    builds the environment from it), and the notebooks offered for download (``_sources`` and
    ``notebooks.zip``) install the library at it.
``SYSLAB_COLAB_REF``
    A branch holding the chapters with their install cell pinned to that commit (the workflow
    writes it with ``tools/set_repository.py --ref <commit>`` and pushes it). Colab opens
    notebooks from GitHub only, so its links open that branch. Unset: Colab links are left alone.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMIT = re.compile(r"[0-9a-f]{40}")


@functools.cache
def _set_repository():
    """tools/set_repository.py as a module (it owns the install cell's text), loaded once per build."""
    spec = importlib.util.spec_from_file_location("set_repository", ROOT / "tools" / "set_repository.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_commit() -> str | None:
    """``SYSLAB_BUILD_COMMIT`` if set (ValueError unless a full commit id), else None."""
    commit = os.environ.get("SYSLAB_BUILD_COMMIT", "").strip()
    if not commit:
        return None
    if not COMMIT.fullmatch(commit):
        raise ValueError(f"SYSLAB_BUILD_COMMIT must be a full 40-hex-digit commit id, got {commit!r}")
    return commit


def pinned_launch_url(url: str, *, branch: str, commit: str | None, colab_ref: str | None) -> str:
    """A launch button's URL with the branch replaced: Binder by ``commit``, Colab by ``colab_ref``.

    Parameters
    ----------
    url : str
        As sphinx-book-theme built it from ``repository.branch``.
    branch : str
        That branch.
    commit, colab_ref : str or None
        The build's commit and the pinned-notebooks branch; None leaves that kind of link alone.

    Returns
    -------
    str
        The URL, changed only where it names ``branch`` in the place that kind of link does.
    """
    if commit and "/v2/gh/" in url:
        # https://mybinder.org/v2/gh/<org>/<repo>/<branch>?urlpath=...
        return re.sub(rf"(/v2/gh/[^/]+/[^/]+/){re.escape(branch)}(?=\?|$)", rf"\g<1>{commit}", url)
    if colab_ref and "colab.research.google.com/github/" in url:
        # https://colab.research.google.com/github/<org>/<repo>/blob/<branch>/<path>
        return re.sub(rf"(/blob/){re.escape(branch)}/", rf"\g<1>{colab_ref}/", url, count=1)
    return url


def _rewrite_buttons(buttons: list, **pins) -> None:
    for button in buttons:
        if isinstance(button, dict):
            if isinstance(button.get("url"), str):
                button["url"] = pinned_launch_url(button["url"], **pins)
            if isinstance(button.get("buttons"), list):
                _rewrite_buttons(button["buttons"], **pins)


def on_page_context(app, pagename, templatename, context, doctree) -> None:
    """Rewrite the page's launch buttons (runs after sphinx-book-theme has added them)."""
    commit = build_commit()
    colab_ref = os.environ.get("SYSLAB_COLAB_REF", "").strip() or None
    if not (commit or colab_ref) or not isinstance(context.get("header_buttons"), list):
        return
    branch = app.config.html_theme_options.get("repository_branch", "main")
    _rewrite_buttons(context["header_buttons"], branch=branch, commit=commit, colab_ref=colab_ref)


def pin_notebook_file(path: Path, commit: str) -> bool:
    """Rewrite the notebook at ``path`` so that its install cell names ``commit``; True if it had one."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    if not _set_repository().pin_notebook(nb, commit):
        return False
    nbformat.write(nb, str(path))
    return True


def on_build_finished(app, exception) -> None:
    """Pin the notebooks offered for download in ``_sources`` (notebooks.zip pins its own copies)."""
    commit = build_commit()
    if exception is not None or commit is None or app.builder.format != "html":
        return
    for path in sorted((Path(app.outdir) / "_sources").rglob("*.ipynb")):
        pin_notebook_file(path, commit)


def setup(app) -> None:
    build_commit()  # a malformed SYSLAB_BUILD_COMMIT fails the build at once
    app.connect("html-page-context", on_page_context, priority=900)
    app.connect("build-finished", on_build_finished)

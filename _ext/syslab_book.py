"""Small Sphinx fixes for the book's HTML, loaded through _config.yml's ``local_extensions``.

1. With Jupyter Book 1.0.4.post1, sphinx-thebe 0.3.1 and sphinx-togglebutton each end up
   registering their inline configuration scripts twice, so every page declared
   ``const THEBE_JS_URL`` twice and the browser raised "Identifier 'THEBE_JS_URL' has already
   been declared" (a console error on every page). The duplicates survive every script list
   Sphinx exposes to extensions, so after the build we drop exact duplicate one-line
   ``<script>`` elements from each page's ``<head>``.
2. Figures glued from notebooks get their file path as alt text
   (``alt="../_images/7faf9e....png"``), which tells a screen-reader user nothing. Each image
   inside a figure gets its caption as alt text instead; a plot shown straight from a code cell
   (no caption) is described as such.
3. pydata-sphinx-theme logs "Got invalid theme mode" when no default colour mode is set;
   we set it to "auto" (follow the reader's system setting), its documented default.
4. Claims are strict in the build (``SYSLAB_CLAIMS=strict``, inherited by every kernel).
5. Figures are drawn at 2x (200 dpi) in the build only, through a matplotlibrc the kernels
   inherit (``MATPLOTLIBRC``); a reader's own Jupyter keeps 100 dpi.
6. Chapters execute in parallel before Sphinx reads them (``syslab_prebuild``), and the build
   report page is written from the same cache (``syslab_report``).
7. ``{eval}`` roles over ``recorded.<key>`` render from glue data (``syslab_eval``), so prose
   reads the same in the book and in JupyterLab.
8. ``notebooks.zip`` (every chapter notebook plus ``data/``) is written next to the pages.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from docutils import nodes


def without_duplicate_scripts(page: str) -> str:
    """``page`` with repeated identical one-line ``<script>`` elements in the head removed."""
    head_end = page.find("</head>")
    if head_end < 0:
        return page
    seen = set()
    kept = []
    for line in page[:head_end].splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("<script") and stripped.endswith("</script>"):
            if stripped in seen:
                continue
            seen.add(stripped)
        kept.append(line)
    return "".join(kept) + page[head_end:]


_WIDGET_STATE = re.compile(
    r'<script type="application/vnd\.jupyter\.widget-state\+json">.*?</script>\s*', re.DOTALL
)


def without_widget_state(page: str) -> str:
    """``page`` without the embedded ipywidgets state: the book loads no widget JavaScript
    (``nb_ipywidgets_js: {}``) and removes widget outputs, so the state (6-100 KB a page, some of
    it base64 PNGs) is never used."""
    return _WIDGET_STATE.sub("", page)


def drop_duplicate_scripts(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for path in Path(app.outdir).rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        cleaned = without_widget_state(without_duplicate_scripts(text))
        if cleaned != text:
            path.write_text(cleaned, encoding="utf-8")


def _is_path_like(alt: str, uri: str) -> bool:
    return not alt.strip() or alt == uri or alt.endswith((".png", ".svg", ".jpg", ".jpeg", ".gif"))


def describe_images(app, doctree, docname) -> None:
    """Give every image a text alternative: its figure's caption, or a plain description."""
    for image in doctree.findall(nodes.image):
        if not _is_path_like(image.get("alt", ""), image.get("uri", "")):
            continue
        figure = image.parent
        while figure is not None and not isinstance(figure, nodes.figure):
            figure = figure.parent
        captions = list(figure.findall(nodes.caption)) if figure is not None else []
        if captions:
            image["alt"] = " ".join(captions[0].astext().split())
        else:
            image["alt"] = "Plot produced by the code cell above (described in the surrounding text)."


def set_default_mode(app, config) -> None:
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "auto")
    config.html_context = context


MATPLOTLIBRC = """# Written by _ext/syslab_book.py for the book build only: figures at 2x (200 dpi) so they stay
# sharp on high-density screens. syslab.mplstyle leaves figure.dpi alone, so a reader's own
# Jupyter keeps matplotlib's 100 dpi (explorers redraw faster).
figure.dpi: 200
"""


def use_build_matplotlibrc(app) -> None:
    """Point the kernels the build starts at a matplotlibrc with 2x figures."""
    folder = Path(app.doctreedir).parent / "syslab-matplotlib"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "matplotlibrc").write_text(MATPLOTLIBRC, encoding="utf-8")
    os.environ["MATPLOTLIBRC"] = str(folder)


NOTEBOOKS_README = """The Systems Lab: every chapter as a Jupyter notebook, with the data it reads.

The notebooks need the book's library, syslab. From a clone of the repository:
    python3 -m pip install -r requirements.txt
    jupyter lab chapters/
Or open a notebook in Colab: its first code cells install syslab.
"""


def write_notebooks_zip(app, exception) -> None:
    """``notebooks.zip`` next to the pages: every chapter notebook in the toc, plus data/."""
    if exception is not None or app.builder.format != "html":
        return
    import zipfile

    import nbformat
    from syslab_prebuild import toc_notebooks
    from syslab_publish import _set_repository, build_commit

    srcdir = Path(app.srcdir)
    target = Path(app.outdir) / "notebooks.zip"
    commit = build_commit()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("the-systems-lab/README.txt", NOTEBOOKS_README)
        for path in toc_notebooks(srcdir):
            name = "the-systems-lab/" + path.relative_to(srcdir).as_posix()
            if commit is None:
                archive.write(path, name)
                continue
            # A published build: the archived chapters install the library at the build's commit.
            nb = nbformat.read(str(path), as_version=4)
            _set_repository().pin_notebook(nb, commit)
            archive.writestr(name, nbformat.writes(nb))
        for extra in ["requirements.txt", *sorted((srcdir / "data").rglob("*"))]:
            path = srcdir / extra if isinstance(extra, str) else extra
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, "the-systems-lab/" + path.relative_to(srcdir).as_posix())


def setup(app):
    # Strict claims: a false claims.check() in any chapter fails the build instead of showing
    # the reader's "On this machine" note. Set before any notebook executes; kernels inherit it.
    os.environ["SYSLAB_CLAIMS"] = "strict"
    # _static/syslab.js and syslab.css (navigation toggles below 992 px, no stray header band,
    # tables scrolling in their own box, tap-to-enlarge figures) are added to every page by
    # Jupyter Book itself, which links every .js/.css file in _static.
    use_build_matplotlibrc(app)
    app.connect("config-inited", set_default_mode)
    # Execute the toc's notebooks in parallel into myst-nb's jupyter-cache before reading
    # (after myst-nb's own builder-inited handler has set the cache path).
    import syslab_eval
    import syslab_prebuild
    import syslab_publish
    import syslab_report

    syslab_eval.setup(app)  # {eval}`f"{recorded.key:.1f}"` rendered from glue data

    app.connect("builder-inited", syslab_prebuild.on_builder_inited, priority=900)
    syslab_report.setup(app)
    syslab_publish.setup(app)  # Binder, Colab and downloads pinned to the build's commit (publishing only)
    app.connect("build-finished", write_notebooks_zip)
    app.connect("doctree-resolved", describe_images)
    app.connect("build-finished", drop_duplicate_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

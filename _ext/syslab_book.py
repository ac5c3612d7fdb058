"""Small Sphinx fixes for the book's HTML, loaded through _config.yml's ``local_extensions``.

1. With Jupyter Book 1.0.4.post1, sphinx-thebe 0.3.1 and sphinx-togglebutton each end up
   registering their inline configuration scripts twice, so every page declared
   ``const THEBE_JS_URL`` twice and the browser raised "Identifier 'THEBE_JS_URL' has already
   been declared" (a console error on every page). The duplicates survive every script list
   Sphinx exposes to extensions, so after the build we drop exact duplicate one-line
   ``<script>`` elements from each page's ``<head>``.
2. pydata-sphinx-theme logs "Got invalid theme mode" when no default colour mode is set;
   we set it to "auto" (follow the reader's system setting), its documented default.
"""

from __future__ import annotations

from pathlib import Path


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


def drop_duplicate_scripts(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for path in Path(app.outdir).rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        cleaned = without_duplicate_scripts(text)
        if cleaned != text:
            path.write_text(cleaned, encoding="utf-8")


def set_default_mode(app, config) -> None:
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "auto")
    config.html_context = context


def setup(app):
    app.connect("config-inited", set_default_mode)
    app.connect("build-finished", drop_duplicate_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

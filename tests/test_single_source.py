"""Every fact lives in one place; where a tool generates a file from it, the file agrees.

- The book's order lives in ``tools/book_map.py``'s plan; ``_toc.yml`` and intro.md's map are
  generated from it.
- Glossary terms are defined in ``glossary.md``; ``tools/link_glossary_terms.py`` only says how a
  mention of each is spelled in prose, and may name only defined terms.
- The repository URL lives in ``_config.yml``; the Colab cells are generated from it
  (``tests/test_hygiene.py`` checks those).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

from conftest import ROOT


def test_toc_and_intro_map_are_what_book_map_generates(tmp_path):
    copy = tmp_path / "book"
    (copy / "tools").mkdir(parents=True)
    (copy / "chapters").mkdir()
    shutil.copy(ROOT / "tools" / "book_map.py", copy / "tools" / "book_map.py")
    shutil.copy(ROOT / "intro.md", copy / "intro.md")
    for notebook in (ROOT / "chapters").glob("*.ipynb"):
        (copy / "chapters" / notebook.name).write_text("{}")
    subprocess.run([sys.executable, str(copy / "tools" / "book_map.py")], check=True, timeout=60)
    assert (copy / "_toc.yml").read_text() == (ROOT / "_toc.yml").read_text(), (
        "_toc.yml was edited by hand: change the plan in tools/book_map.py and run it"
    )
    assert (copy / "intro.md").read_text() == (ROOT / "intro.md").read_text(), (
        "intro.md's map disagrees with tools/book_map.py: run it"
    )


def glossary_terms() -> set[str]:
    text = (ROOT / "glossary.md").read_text()
    block = text.split("```{glossary}", 1)[1].split("```", 1)[0]
    return {line.strip() for line in block.splitlines() if line.strip() and not line.startswith((" ", "\t"))}


def test_linked_terms_are_defined_in_the_glossary():
    sys.path.insert(0, str(ROOT / "tools"))
    source = (ROOT / "tools" / "link_glossary_terms.py").read_text()
    terms_block = source.split("TERMS = {", 1)[1].split("\n}", 1)[0]
    linked = set(re.findall(r':\s*"([^"]+)",', terms_block))
    assert linked, "no terms found in tools/link_glossary_terms.py"
    undefined = linked - glossary_terms()
    assert not undefined, (
        f"link_glossary_terms.py links terms glossary.md does not define: {sorted(undefined)}"
    )


def test_chapter_term_links_point_at_defined_terms():
    defined = glossary_terms()
    for notebook in sorted((ROOT / "chapters").glob("*.ipynb")):
        for term in re.findall(r"\{term\}`[^`<]*<([^>]+)>`", notebook.read_text()):
            assert term in defined, f"{notebook.name} links the undefined glossary term {term!r}"

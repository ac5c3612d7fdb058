"""Convert a chapter to the notebook idiom that reads well in the book AND in JupyterLab/Colab.

    python tools/notebook_idiom.py chapters/gc-pauses.ipynb            # convert in place
    python tools/notebook_idiom.py chapters/*.ipynb --check            # exit 1 if any would change

What it does, mechanically (and idempotently: a second run changes nothing):

1. Numbers. Every ``glue(key, value, display=False)`` statement at the top level of a code cell
   (or a ``for`` loop whose body is only such glue calls) that the rest of the cell does not
   depend on is moved out of the cell into a new cell right after it, tagged ``remove-cell``
   (absent from the web page), and rewritten as ``notebook.record(key=value)`` (a dynamic key:
   ``notebook.record(**{key: value})``). ``record`` glues exactly as before, shows the values
   in Jupyter and Colab, and keeps them in ``syslab.notebook.recorded``. A cell left empty is
   dropped. Keys used by ``{glue:figure}``, ``{glue:md}`` or a ``{glue:}`` directive are not
   numbers and are left alone.
2. Prose. ``{glue:text}`key:spec``` becomes ``{eval}`f"{recorded.key:spec}"``` and
   ``{glue:text}`key``` / ``{glue:}`key``` become ``{eval}`recorded.key``` -- for recorded keys
   only. jupyterlab-myst evaluates ``{eval}`` in the kernel (the number appears in the
   sentence); the book renders the same expression from the glue data (``_ext/syslab_eval.py``).
3. Figures. ``glue("fig_x", fig, display=False)`` (+ the ``plt.close(fig)`` after it) becomes
   ``notebook.figure("fig_x", fig)``, which shows the figure in the cell in Jupyter/Colab; the
   cell is tagged ``remove-cell`` (as every record/figure cell is), so the web page shows the
   figure once, where ``{glue:figure}`` puts it. A key that is not ``fig_<identifier>`` is
   renamed (code and directive).
4. Imports. The cell importing ``glue`` also imports ``from syslab import notebook`` and
   ``from syslab.notebook import recorded``; ``from myst_nb import glue`` goes when no glue
   call is left.

Whatever it cannot convert safely (glue inside other statements, ``{glue:md}``, cross-page
``path::key`` roles, tables pasted with ``{glue:}``) it lists at the end, for a person.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import re
import sys
from pathlib import Path

import nbformat

TEXT_ROLE = re.compile(r"\{glue:text\}`([^`]+)`")
ANY_ROLE = re.compile(r"\{glue:?\}`([^`]+)`")
MD_ROLE = re.compile(r"\{glue:md\}`([^`]+)`")
FIGURE_DIRECTIVE = re.compile(r"(```+|:::+)\{glue:figure\}[ \t]+(\S+)")
PASTE_DIRECTIVE = re.compile(r"(```+|:::+)\{glue:?\}[ \t]+(\S+)")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _is_glue_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id == "glue"
        and len(node.value.args) == 2
        and any(
            k.arg == "display" and isinstance(k.value, ast.Constant) and k.value.value is False
            for k in node.value.keywords
        )
    )


def _literal_key(call: ast.Call) -> str | None:
    key = call.args[0]
    return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None


def _glue_only_loop(node: ast.AST) -> bool:
    if not isinstance(node, ast.For) or node.orelse:
        return False
    return all(_is_glue_call(s) or _glue_only_loop(s) for s in node.body)


def _names(node: ast.AST, ctx) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}


def _key_pattern(call: ast.Call) -> str:
    """A regex for the keys a (possibly f-string) glue key can produce."""
    key = call.args[0]
    if isinstance(key, ast.Constant):
        return re.escape(str(key.value))
    if isinstance(key, ast.JoinedStr):
        return "".join(
            re.escape(v.value) if isinstance(v, ast.Constant) else r"[A-Za-z0-9_]+" for v in key.values
        )
    return r"[A-Za-z0-9_]+"


def _record_source(node: ast.AST, source_lines: list[str]) -> str:
    """``node`` (a glue call or a loop of them) with each glue call rewritten as notebook.record."""
    if _is_glue_call(node):
        call = node.value
        key = _literal_key(call)
        value = ast.get_source_segment("\n".join(source_lines), call.args[1])
        markdown_text = _markdown_string(call.args[1], "\n".join(source_lines))
        if markdown_text is not None:
            value = markdown_text
        if key is not None and IDENTIFIER.match(key):
            return f"notebook.record({key}={value})"
        key_source = ast.get_source_segment("\n".join(source_lines), call.args[0])
        return f"notebook.record(**{{{key_source}: {value}}})"
    assert isinstance(node, ast.For)
    text = "\n".join(source_lines)
    header = f"for {ast.get_source_segment(text, node.target)} in {ast.get_source_segment(text, node.iter)}:"
    body = "\n".join(_record_source(s, source_lines) for s in node.body)
    return header + "\n" + "\n".join("    " + line for line in body.splitlines())


def _markdown_string(value: ast.expr, text: str) -> str | None:
    """For ``Markdown(f"`...`")`` (a value shown as code), the string expression inside, unquoted."""
    if not (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "Markdown"
        and len(value.args) == 1
        and not value.keywords
        and isinstance(value.args[0], (ast.JoinedStr, ast.Constant))
    ):
        return None
    inner = ast.get_source_segment(text, value.args[0])
    match = re.fullmatch(r'(f?)(["\'])`(.*)`\2', inner, re.S)
    if not match:
        return None
    return f"{match.group(1)}{match.group(2)}{match.group(3)}{match.group(2)}"


def _cell_id(seed: str) -> str:
    return "rec-" + hashlib.sha1(seed.encode()).hexdigest()[:12]


def _figure_key(key: str) -> str:
    if IDENTIFIER.match(key) and key.startswith("fig_"):
        return key
    stem = re.sub(r"^fig[-_]?", "", key)
    return "fig_" + re.sub(r"[^A-Za-z0-9_]", "_", stem)


def convert(nb) -> tuple[bool, list[str]]:
    """Convert ``nb`` in place; return (changed, things left for a person)."""
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    figure_keys = {m.group(2) for m in FIGURE_DIRECTIVE.finditer(markdown)}
    md_keys = set(MD_ROLE.findall(markdown))
    other_keys = md_keys | {
        m.group(2) for m in PASTE_DIRECTIVE.finditer(markdown) if m.group(2) not in figure_keys
    }
    changed = False
    leftovers: list[str] = []
    recorded_literal: set[str] = set()
    recorded_patterns: list[str] = []
    unconverted_literal: set[str] = set()
    unconverted_patterns: list[str] = []
    renamed_figures: dict[str, str] = {}

    new_cells = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            new_cells.append(cell)
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            new_cells.append(cell)
            continue
        for node in ast.walk(tree):  # keys a previous run (or an author) already records
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "record"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "notebook"
            ):
                for keyword in node.keywords:
                    if keyword.arg is not None:
                        recorded_literal.add(keyword.arg)
                    elif isinstance(keyword.value, ast.Dict):
                        for key in keyword.value.keys:
                            if key is not None:
                                fake = ast.Call(func=ast.Name("glue"), args=[key, key], keywords=[])
                                recorded_patterns.append(_key_pattern(fake))
                    elif isinstance(keyword.value, ast.DictComp):  # **{f"swap_{k}": ... for k in ...}
                        key = keyword.value.key
                        fake = ast.Call(func=ast.Name("glue"), args=[key, key], keywords=[])
                        recorded_patterns.append(_key_pattern(fake))
                    else:  # **values: any key could be in it
                        recorded_patterns.append(r"[A-Za-z0-9_]+")
        lines = cell.source.splitlines()
        body = tree.body
        drop: set[int] = set()  # statement indices removed from the cell
        moved: list[str] = []
        replacements: dict[int, str] = {}
        for i, stmt in enumerate(body):
            if _is_glue_call(stmt):
                key = _literal_key(stmt.value)
                if key is not None and key in figure_keys:
                    fig_source = ast.get_source_segment(cell.source, stmt.value.args[1])
                    new_key = _figure_key(key)
                    if new_key != key:
                        renamed_figures[key] = new_key
                    replacements[i] = f'notebook.figure("{new_key}", {fig_source})'
                    nxt = body[i + 1] if i + 1 < len(body) else None
                    if (
                        nxt is not None
                        and isinstance(nxt, ast.Expr)
                        and ast.get_source_segment(cell.source, nxt) in (f"plt.close({fig_source})",)
                    ):
                        drop.add(i + 1)
                    continue
                if key is not None and key in other_keys:
                    if key in md_keys and _markdown_string(stmt.value.args[1], cell.source) is not None:
                        pass  # a code-formatted string: recorded as plain text
                    else:
                        unconverted_literal.add(key)
                        continue
            if not (_is_glue_call(stmt) or _glue_only_loop(stmt)):
                continue
            later = [s for j, s in enumerate(body[i + 1 :], start=i + 1) if j not in drop]
            # Free reads: names a statement reads but does not bind itself (a loop's own
            # target is not a dependency on anything before it).
            writes = _names(stmt, ast.Store)
            reads = _names(stmt, ast.Load) - writes
            later_writes = set().union(*(_names(s, ast.Store) for s in later)) if later else set()
            later_reads = (
                set().union(*(_names(s, ast.Load) - _names(s, ast.Store) for s in later)) if later else set()
            )
            if reads & later_writes or writes & later_reads:
                for call in (
                    n
                    for n in ast.walk(stmt)
                    if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "glue"
                ):
                    (
                        unconverted_literal.add(_literal_key(call))
                        if _literal_key(call)
                        else unconverted_patterns.append(_key_pattern(call))
                    )
                leftovers.append(
                    f"cell {index}: glue at line {stmt.lineno} depends on later code; left in place"
                )
                continue
            for call in (
                n for n in ast.walk(stmt) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "glue"
            ):
                key = _literal_key(call)
                (recorded_literal.add(key) if key else recorded_patterns.append(_key_pattern(call)))
            moved.append(_record_source(stmt, lines))
            drop.add(i)
        # glue calls nested elsewhere (inside functions, ifs, ...) stay glue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "glue":
                top = next((j for j, s in enumerate(body) if s.lineno <= node.lineno <= s.end_lineno), None)
                if top is not None and (top in drop or top in replacements):
                    continue
                key = _literal_key(node)
                if key in figure_keys or key in other_keys:
                    continue
                (unconverted_literal.add(key) if key else unconverted_patterns.append(_key_pattern(node)))
                leftovers.append(
                    f"cell {index}: glue at line {node.lineno} is not a top-level glue statement; left"
                )
        if not drop and not replacements:
            new_cells.append(cell)
            continue
        changed = True
        kept_lines: list[str] = []
        line_owner = {}
        for j, stmt in enumerate(body):
            for ln in range(stmt.lineno, stmt.end_lineno + 1):
                line_owner[ln] = j
        emitted = set()
        for ln, text in enumerate(lines, start=1):
            j = line_owner.get(ln)
            if j is None:
                kept_lines.append(text)
            elif j in replacements:
                if j not in emitted:
                    kept_lines.append(replacements[j])
                    emitted.add(j)
            elif j not in drop:
                kept_lines.append(text)
        remaining = "\n".join(kept_lines).strip("\n")
        if remaining.strip():
            cell.source = remaining
            new_cells.append(cell)
        if moved:
            source = "\n".join(moved)
            record_cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["remove-cell"]})
            record_cell.id = _cell_id(source)
            new_cells.append(record_cell)
    nb.cells = new_cells
    # Bookkeeping (record, figure) never shows on the web page: the figure appears where
    # {glue:figure} puts it, the numbers in the prose (CONTRIBUTING.md's convention).
    for cell in nb.cells:
        if cell.cell_type == "code" and re.search(r"notebook\.(record|figure)\(", cell.source):
            tags = cell.metadata.setdefault("tags", [])
            if "remove-cell" not in tags:
                tags[:] = [tag for tag in tags if tag not in ("remove-output", "remove-input", "hide-input")]
                tags.append("remove-cell")
                changed = True

    def is_recorded(key: str) -> bool:
        if key in unconverted_literal or any(re.fullmatch(p, key) for p in unconverted_patterns):
            return False
        return key in recorded_literal or any(re.fullmatch(p, key) for p in recorded_patterns)

    def text_role(match: re.Match) -> str:
        content = match.group(1)
        if "::" in content:
            return match.group(0)
        key, _, spec = content.partition(":")
        if not is_recorded(key):
            return match.group(0)
        return f'{{eval}}`f"{{recorded.{key}:{spec}}}"`' if spec else f"{{eval}}`recorded.{key}`"

    def any_role(match: re.Match) -> str:
        key = match.group(1)
        return f"{{eval}}`recorded.{key}`" if "::" not in key and is_recorded(key) else match.group(0)

    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        source = TEXT_ROLE.sub(text_role, cell.source)
        source = ANY_ROLE.sub(any_role, source)
        source = MD_ROLE.sub(any_role, source)
        for old, new in renamed_figures.items():
            source = re.sub(r"(\{glue:figure\}[ \t]+)" + re.escape(old) + r"\b", r"\g<1>" + new, source)
        if source != cell.source:
            cell.source = source
            changed = True
        for content in TEXT_ROLE.findall(cell.source):
            leftovers.append(f"prose still uses {{glue:text}}`{content}`")
        for content in MD_ROLE.findall(cell.source):
            leftovers.append(f"prose uses {{glue:md}}`{content}` (Markdown value): convert by hand")

    # imports, in the setup cell (the one importing glue, else the one applying the house style)
    uses_notebook = any(c.cell_type == "code" and "notebook." in c.source for c in nb.cells)
    uses_recorded = any(c.cell_type == "markdown" and "recorded." in c.source for c in nb.cells)
    glue_left = any(c.cell_type == "code" and re.search(r"(?<![\w.])glue\(", c.source) for c in nb.cells)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    setup = next((c for c in code_cells if re.search(r"^from myst_nb import glue$", c.source, re.M)), None)
    setup = setup or next((c for c in code_cells if "use_style()" in c.source), None)
    if setup is not None:
        lines = setup.source.splitlines()
        if not glue_left and "from myst_nb import glue" in lines:
            lines.remove("from myst_nb import glue")
        if uses_notebook or uses_recorded:
            _add_imports(lines)
        code = "\n".join(c.source for c in code_cells if c is not setup)
        code += "\n".join(line for line in lines if not line.startswith(("from ", "import ")))
        if "Markdown(" not in code and "from IPython.display import Markdown" in lines:
            lines.remove("from IPython.display import Markdown")  # only glue used it
        _separate_first_party(lines)
        new_source = "\n".join(lines)
        if new_source != setup.source:
            setup.source = new_source
            changed = True
    return changed, sorted(set(leftovers))


def _add_imports(lines: list[str]) -> None:
    """Import ``notebook`` and ``recorded`` from syslab, where isort/ruff would put them."""
    plain = next(
        (i for i, line in enumerate(lines) if re.fullmatch(r"from syslab import [\w, ]+", line)), None
    )
    if not any(re.fullmatch(r"from syslab import [\w, ]*\bnotebook\b[\w, ]*", line) for line in lines):
        if plain is not None:
            names = sorted(
                {*(n.strip() for n in lines[plain][len("from syslab import ") :].split(",")), "notebook"}
            )
            lines[plain] = "from syslab import " + ", ".join(names)
        else:
            last = max(
                (i for i, line in enumerate(lines) if line.startswith(("from ", "import "))), default=-1
            )
            lines.insert(last + 1, "from syslab import notebook")
    recorded = "from syslab.notebook import recorded  # noqa: F401 - the prose's {eval} reads it"
    if any(line.startswith("from syslab.notebook import") for line in lines):
        return
    syslab = [i for i, line in enumerate(lines) if line.startswith(("from syslab ", "from syslab."))]
    later = [
        i for i in syslab if lines[i].startswith("from syslab.") and lines[i].split()[1] > "syslab.notebook"
    ]
    lines.insert(later[0] if later else syslab[-1] + 1, recorded)


def _separate_first_party(lines: list[str]) -> None:
    """A blank line between third-party imports and syslab's (isort's sections)."""
    for i, line in enumerate(lines):
        if line.startswith(("from syslab ", "from syslab.", "import syslab")):
            before = lines[i - 1] if i else ""
            if before.startswith(("from ", "import ")) and "syslab" not in before.split()[1]:
                lines.insert(i, "")
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a notebook would change"
    )
    args = parser.parse_args(argv)
    status = 0
    for path in args.notebooks:
        nb = nbformat.read(str(path), as_version=4)
        changed, leftovers = convert(nb)
        verb = "would change" if args.check else "converted"
        print(f"{path}: {verb if changed else 'already in the idiom'}")
        for item in leftovers:
            print(f"  left for a person: {item}")
        if changed and args.check:
            status = 1
        elif changed:
            nbformat.write(nb, str(path))
    return status


if __name__ == "__main__":
    sys.exit(main())

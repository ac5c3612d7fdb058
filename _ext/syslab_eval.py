"""``{eval}`` for numbers in the prose, in the book and in JupyterLab alike.

A chapter's prose quotes computed numbers. ``{glue:text}`key:.1f``` works only in the book:
JupyterLab (even with jupyterlab-myst) shows ``key:.1f``, and Colab the raw role. jupyterlab-myst
does evaluate MyST's ``{eval}`` role: running a Markdown cell sends the expression to the kernel
and shows the result in the sentence (a string without its quotes). So the prose says::

    The program allocates {eval}`f"{recorded.n_alloc:,d}"` objects, {eval}`recorded.pct_temp` ...

where ``recorded`` is :data:`syslab.notebook.recorded`, which :func:`syslab.notebook.record`
fills with the same values it glues.

myst-nb's own ``{eval}`` needs a live kernel (``execute_notebooks: inline``), which a cached,
parallel build does not have. This role replaces it for the book: it reads an expression of
exactly these forms -- ``recorded.KEY`` or an f-string whose fields are ``recorded.KEY`` with an
optional format spec -- and renders it from the chapter's glue data, exactly as
``{glue:text}`KEY:spec``` would. Anything else is a build warning (so ``-W`` fails): the book
never evaluates arbitrary code at render time.
"""

from __future__ import annotations

import ast

from docutils import nodes

NAMESPACE = "recorded"


class EvalSyntaxError(ValueError):
    """The expression is not one the book can render from glue data."""


def _key(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == NAMESPACE:
        return node.attr
    raise EvalSyntaxError(f"expected {NAMESPACE}.<key>, got {ast.unparse(node)!r}")


def parse(expression: str) -> list[tuple[str, str] | str]:
    """The parts of an ``{eval}`` expression: literal text, or (glue key, format spec).

    >>> parse('f"{recorded.x:.1f} ms"')
    [('x', '.1f'), ' ms']
    >>> parse("recorded.name")
    [('name', '')]
    """
    try:
        tree = ast.parse(expression.strip(), mode="eval").body
    except SyntaxError as error:
        raise EvalSyntaxError(f"not a Python expression: {expression!r}") from error
    if isinstance(tree, ast.Attribute):
        return [(_key(tree), "")]
    if not isinstance(tree, ast.JoinedStr):
        raise EvalSyntaxError(f"expected {NAMESPACE}.<key> or an f-string of them, got {expression!r}")
    parts: list[tuple[str, str] | str] = []
    for value in tree.values:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            parts.append(value.value)
        elif isinstance(value, ast.FormattedValue):
            if value.conversion != -1:
                raise EvalSyntaxError(f"no !r/!s/!a conversions in the book: {expression!r}")
            spec = ""
            if value.format_spec is not None:
                pieces = value.format_spec.values
                if not all(isinstance(p, ast.Constant) for p in pieces):
                    raise EvalSyntaxError(f"format spec must be literal: {expression!r}")
                spec = "".join(str(p.value) for p in pieces)
            parts.append((_key(value.value), spec))
        else:  # pragma: no cover - JoinedStr holds only these two
            raise EvalSyntaxError(f"unsupported f-string part in {expression!r}")
    return parts


def eval_role(name, rawtext, text, lineno, inliner, options=None, content=()):
    from myst_nb.ext.glue.roles import PasteTextRole

    try:
        parts = parse(text)
    except EvalSyntaxError as error:
        message = inliner.reporter.warning(f"{{eval}}: {error}", line=lineno)
        return [nodes.problematic(rawtext, rawtext)], [message]
    result: list[nodes.Node] = []
    messages: list[nodes.system_message] = []
    for part in parts:
        if isinstance(part, str):
            result.append(nodes.Text(part))
            continue
        key, spec = part
        role_text = f"{key}:{spec}" if spec else key
        made, problems = PasteTextRole()(
            "glue:text", f"{{glue:text}}`{role_text}`", role_text, lineno, inliner, options, content
        )
        result.extend(made)
        messages.extend(problems)
    return result, messages


def setup(app):
    # After myst-nb (a Jupyter Book builtin), whose own {eval} needs a live kernel.
    app.add_role("eval", eval_role, override=True)

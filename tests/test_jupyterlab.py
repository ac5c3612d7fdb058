"""A chapter read where readers run it: a real JupyterLab (with jupyterlab-myst), in Debian Chromium.

The test copies a chapter that follows the notebook idiom (``tools/notebook_idiom.py``) into a
temporary folder with the test's small parameters, starts ``jupyter lab`` on 127.0.0.1 with a
token, opens the notebook through Playwright, runs every cell, saves, and checks what a reader
sees: every figure shows in its cell, every number the prose quotes with ``{eval}`` appears in
the rendered sentence (jupyterlab-myst evaluates it in the kernel), no raw ``{glue``/``{eval}``
markup is visible, terms, admonitions and exercises render, and solutions start collapsed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import nbformat
import pytest
from conftest import ROOT
from run_chapter import small_parameters, with_parameters

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("SYSLAB_CHROMIUM", "/usr/bin/chromium")
CHAPTERS = ["gc-pauses", "c10k"]  # chapters converted to the idiom; the lead adds the rest as they convert
TOKEN = "syslab-test-token"
EVAL = re.compile(r"\{eval\}`([^`]*)`")
# A solution is collapsed until the reader opens it, so its numbers are checked when evaluated,
# not for being visible on the first look.
SOLUTION = re.compile(r"^:::\{solution\}.*?^:::[ \t]*$", re.MULTILINE | re.DOTALL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving a temporary copy of the chapters; yields (url, folder)."""
    if shutil.which("jupyter-lab") is None and shutil.which("jupyter") is None:
        pytest.fail("JupyterLab is not installed: pip install -r requirements.txt")
    folder = tmp_path_factory.mktemp("lab")
    (folder / "chapters").mkdir()
    for slug in CHAPTERS:
        nb = nbformat.read(str(ROOT / "chapters" / f"{slug}.ipynb"), as_version=4)
        nbformat.write(with_parameters(nb, small_parameters(nb)), str(folder / "chapters" / f"{slug}.ipynb"))
    if (ROOT / "data").is_dir():
        shutil.copytree(ROOT / "data", folder / "data")
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={folder}",
        f"--LabApp.workspaces_dir={folder / '.workspaces'}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=",
        "--ServerApp.open_browser=False",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    # JupyterLab 4 renders only the cells near the viewport; render them all, so the page can be read.
    settings = folder / ".settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(folder / ".jupyter"),
        JUPYTERLAB_SETTINGS_DIR=str(folder / ".settings"),
    )
    env.pop("SYSLAB_CLAIMS", None)  # a reader's run: claims show notes, not errors
    log = open(folder / "lab.log", "w")
    server = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("jupyter lab did not start:\n" + (folder / "lab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield url, folder
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser():
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium (see .ci/run)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        try:
            yield browser
        finally:
            browser.close()


KERNEL_IDLE = """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return !!k && k.status === 'idle'; }"""
ALL_RAN = """() => { const w = window.jupyterapp.shell.currentWidget;
    const prompts = Array.from(w.node.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt'));
    return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent))
        && w.sessionContext.session.kernel.status === 'idle'; }"""


@pytest.fixture(scope="module", params=CHAPTERS)
def ran(request, lab, browser):
    """Open the chapter, run all cells, save; yield (page, executed notebook, source notebook)."""
    url, folder = lab
    slug = request.param
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{url}/lab/tree/chapters/{slug}.ipynb?reset&token={TOKEN}")
    page.wait_for_function(KERNEL_IDLE, timeout=120_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_timeout(2_000)
    page.wait_for_function(ALL_RAN, timeout=600_000, polling=1_000)
    page.wait_for_timeout(3_000)  # markdown cells send their {eval} expressions after the code ran
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_timeout(2_000)
    executed = nbformat.read(str(folder / "chapters" / f"{slug}.ipynb"), as_version=4)
    source = nbformat.read(str(ROOT / "chapters" / f"{slug}.ipynb"), as_version=4)
    try:
        yield page, executed, source, errors
    finally:
        page.close()


def test_no_errors_in_the_run(ran):
    _, executed, _, _ = ran
    errors = [
        f"{output.get('ename')}: {output.get('evalue')}"
        for cell in executed.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors, errors


def test_every_figure_shows_in_its_cell(ran):
    page, _, source, _ = ran
    markdown = "\n".join(c.source for c in source.cells if c.cell_type == "markdown")
    figures = len(re.findall(r"\{glue:figure\}", markdown))
    assert figures > 0
    shown = page.evaluate(
        """() => Array.from(window.jupyterapp.shell.currentWidget.node.querySelectorAll(
               '.jp-CodeCell .jp-OutputArea-output img, .jp-CodeCell .jp-OutputArea-output svg'))
               .filter(img => img.getBoundingClientRect().width > 100).length"""
    )
    assert shown >= figures, f"{shown} figures visible in cell outputs, the prose shows {figures}"


def _plain(result: dict) -> str:
    text = result.get("data", {}).get("text/plain", "")
    return re.sub(r"^(['\"])(.*)\1$", r"\2", text)


def test_every_number_in_the_prose_is_visible(ran):
    page, executed, _, _ = ran
    rendered = page.evaluate(
        """() => Array.from(window.jupyterapp.shell.currentWidget.node.querySelectorAll(
               '.jp-MarkdownCell'))
               .map(node => node.innerText)"""
    )
    markdown_cells = [c for c in executed.cells if c.cell_type == "markdown"]
    assert len(rendered) >= len(markdown_cells) - 1
    checked = 0
    for cell in markdown_cells:
        expressions = EVAL.findall(cell.source)
        hidden = set(EVAL.findall("\n".join(SOLUTION.findall(cell.source))))
        if not expressions:
            continue
        results = cell.metadata.get("user_expressions", [])
        by_expression = {item.get("expression"): item.get("result", {}) for item in results}
        text = "\n".join(rendered)
        for expression in expressions:
            result = by_expression.get(expression)
            assert result is not None, f"{{eval}}`{expression}` was not evaluated in JupyterLab"
            assert result.get("status", "ok") == "ok", (
                f"{{eval}}`{expression}` failed: {json.dumps(result)[:300]}"
            )
            value = _plain(result)
            if expression in hidden:
                continue
            assert value and value in text, f"{{eval}}`{expression}` = {value!r} is not visible in the prose"
            checked += 1
    assert checked > 0, "the chapter should state computed numbers with {eval}"


def test_no_raw_markup_is_visible(ran):
    page, _, source, _ = ran
    markdown = "\n".join(c.source for c in source.cells if c.cell_type == "markdown")
    # jupyterlab-myst shows an inline {glue:text}`key:.1f` as "key:.1f": no brace, no number.
    inline_glue = re.findall(r"\{glue(?::text|:md|:any|:)?\}`[^`]*`", markdown)
    assert not inline_glue, (
        f"prose still quotes numbers with glue roles (run tools/notebook_idiom.py): {inline_glue[:3]}"
    )
    text = page.evaluate(
        """() => Array.from(window.jupyterapp.shell.currentWidget.node.querySelectorAll('.jp-MarkdownCell'))
               .map(node => node.innerText).join('\\n')"""
    )
    for raw in ("{glue", "{eval}", "recorded.", "{term}", "{footcite", ":::{"):
        assert raw not in text, f"raw markup {raw!r} is visible in JupyterLab"


def test_myst_renders_terms_admonitions_exercises_and_collapsed_solutions(ran):
    page, _, source, _ = ran
    markdown = "\n".join(c.source for c in source.cells if c.cell_type == "markdown")
    node = "window.jupyterapp.shell.currentWidget.node"
    if "{exercise}" in markdown:
        exercises = page.evaluate(f"() => {node}.innerText.match(/Exercise \\d+/g) || []")
        assert exercises, "exercises do not render"
    if "{solution}" in markdown:
        solution_texts = [
            m.strip().splitlines()[0]
            for m in re.findall(r":::\{solution\}[^\n]*\n(?::[^\n]*\n)*([^\n]+)", markdown)
        ]
        visible = page.evaluate(f"() => {node}.innerText")
        leaked = [t for t in solution_texts if len(t) > 20 and t[:40] in visible]
        assert not leaked, f"solutions are visible before the reader opens them: {leaked[:2]}"
    if "{term}" in markdown:
        links = page.evaluate(f"() => {node}.querySelectorAll('.jp-MarkdownCell a').length")
        assert links > 0

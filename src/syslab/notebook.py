"""The notebook idiom: numbers and figures handed to the prose, tables for readers.

Chapters never call ``myst_nb.glue`` directly. Bookkeeping sits in cells tagged
``remove-cell`` (absent from the web page, present in Jupyter and Colab, where its output
lists the values the prose quotes, so a reader there sees every number)::

    notebook.record(n_rows=N_ROWS, speedup=float(table.loc[8, "speedup"]))
    notebook.figure("fig_benchmark", soft_delete.plot_benchmark(runs))

Figure keys are ``fig_<what>`` (the glue key) and the ``{glue:figure}`` directive names
them ``fig-<chapter-slug>-<what>`` for ``{numref}``.

:func:`table` turns a tidy frame into a reader's table: headers in words with units,
no positional index, numbers formatted.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from types import SimpleNamespace

import numpy as np
import pandas as pd

__all__ = ["fallback_note", "figure", "record", "recorded", "table"]

#: Every value :func:`record` glued, by key, for the prose's ``{eval}`` roles:
#: ``{eval}`f"{recorded.n_rows:,d}"``` shows the number inside the sentence in JupyterLab
#: (jupyterlab-myst evaluates it in the kernel) and in the book (``_ext/syslab_eval.py`` renders
#: the same expression from the glue data).
recorded = SimpleNamespace()

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_TABLE_ROWS = 500


def _plain(key: str, value: object) -> int | float | str | bool:
    """``value`` as a plain Python scalar (glue stores its repr; numpy types print oddly)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        return value
    raise TypeError(
        f"{key} must be an int, float, bool or str to glue into prose, got {type(value).__name__}"
    )


def _format(value: int | float | str | bool) -> str:
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    return f"{value:,.4g}"


def record(**values: object) -> None:
    """Glue each keyword as a number or phrase the prose quotes, and keep it in :data:`recorded`.

    The prose quotes it as ``{eval}`f"{recorded.key:.1f}"``` (rendered in JupyterLab by
    jupyterlab-myst and in the book by ``_ext/syslab_eval.py``; ``tools/notebook_idiom.py``
    converts ``{glue:text}`` roles to this form).

    Parameters
    ----------
    **values : int, float, bool or str
        Key (a Python identifier) to value; numpy scalars become plain Python values.

    Returns
    -------
    None
        In Jupyter the cell shows one line listing the values, so a reader whose front end
        does not render ``{glue:text}`` still sees every number next to the prose.
    """
    if not values:
        raise ValueError("record needs at least one key=value")
    plain = {key: _plain(key, value) for key, value in values.items()}
    for key, value in plain.items():
        _glue(key, value, display=False)
        setattr(recorded, key, value)
    _display_markdown(" · ".join(f"`{key}` = {_format(value)}" for key, value in plain.items()))


# myst-nb's glue protocol (``myst_nb.glue`` in myst-nb 1.x), written out here: importing
# myst_nb's glue imports nbformat, whose jsonschema import compiles 38 rfc3987 grammars with lark,
# about 2 s of every chapter's first record (6 s under load). The book reads these outputs with
# myst-nb itself; tests/test_kernel.py holds this function's output equal to myst_nb.glue's.
_GLUE_PREFIX = "application/papermill.record/"


def _glue(key: str, value: object, *, display: bool) -> None:
    from IPython.core.formatters import format_display_data
    from IPython.display import display as ipy_display

    bundle, metadata = format_display_data(value)
    prefix = "" if display else _GLUE_PREFIX
    metadata["scrapbook"] = {"name": key, "mime_prefix": prefix}
    ipy_display({prefix + mime: data for mime, data in bundle.items()}, raw=True, metadata=metadata)


def _display_markdown(text: str) -> None:
    try:
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover
        print(text)
        return
    display(Markdown(text))


def figure(key: str, artist: object) -> None:
    """Glue a figure under ``key`` for a ``{glue:figure}`` directive, show it, and close it.

    Parameters
    ----------
    key : str
        ``fig_<what>``: a Python identifier starting with ``fig_``.
    artist : matplotlib Figure, Axes, or array/sequence of Axes
        What a ``plot_*`` helper returned.

    Returns
    -------
    None
        The figure is displayed in the cell (Jupyter and Colab show it) and stored for the web
        page; it is closed so it is not drawn twice.
    """
    if not isinstance(key, str) or not _KEY.match(key) or not key.startswith("fig_"):
        raise ValueError(f"key must be an identifier starting with 'fig_', got {key!r}")
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    target = artist
    if isinstance(target, np.ndarray):
        target = target.flat[0] if target.size else None
    elif isinstance(target, (list, tuple)):
        target = target[0] if target else None
    if isinstance(target, Axes):
        fig = target.get_figure()
    elif isinstance(target, Figure):
        fig = target
    else:
        raise TypeError(f"artist must be a matplotlib Figure or Axes, got {type(artist).__name__}")
    _glue(key, fig, display=True)
    plt.close(fig)


def table(
    frame: pd.DataFrame,
    columns: Mapping[str, str] | None = None,
    *,
    formats: Mapping[str, str] | None = None,
    caption: str | None = None,
):
    """A reader's table: chosen columns renamed to words with units, no index, numbers formatted.

    Parameters
    ----------
    frame : pandas.DataFrame
        Tidy data (at most 500 rows: a table on a page is read, not scrolled).
    columns : Mapping[str, str], optional
        Column to its header, in display order (``{"pool_size": "pool size",
        "p99_ms": "p99 (ms)"}``). Default: every column, underscores turned into spaces.
    formats : Mapping[str, str], optional
        Header (after renaming) to a format string (``"{:,.1f}"``). Default: integers with
        thousands separators, other numbers to 3 significant figures.
    caption : str, optional
        A caption shown above the table.

    Returns
    -------
    pandas.io.formats.style.Styler
        Renders as HTML in the book and in Jupyter; the book's CSS makes it scroll inside its
        own box on a phone.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    if len(frame) > MAX_TABLE_ROWS:
        raise ValueError(f"frame must have at most {MAX_TABLE_ROWS} rows for a table, got {len(frame):,}")
    if columns is None:
        columns = {name: str(name).replace("_", " ") for name in frame.columns}
    if not isinstance(columns, Mapping):
        raise TypeError(f"columns must be a mapping of column to header, got {type(columns).__name__}")
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise ValueError(
            f"columns names columns the frame does not have: {missing}; it has {list(frame.columns)}"
        )
    shown = frame.loc[:, list(columns)].rename(columns=dict(columns)).reset_index(drop=True)
    formats = dict(formats or {})
    for header in shown.columns:
        if header in formats:
            continue
        dtype = shown[header].dtype
        if pd.api.types.is_bool_dtype(dtype):
            continue
        if pd.api.types.is_integer_dtype(dtype):
            formats[header] = "{:,}"
        elif pd.api.types.is_float_dtype(dtype):
            formats[header] = _float_format
    styler = shown.style.hide(axis="index").format(formats, na_rep="–")
    styler = styler.set_table_attributes('class="syslab-table"')
    if caption is not None:
        styler = styler.set_caption(str(caption))
    return styler


def _float_format(x: float) -> str:
    if not math.isfinite(x):
        return "–" if math.isnan(x) else str(x)
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def fallback_note(engine: str, reason: str, stand_in: str) -> None:
    """A visible note that a section ran on a stand-in because a real engine was missing.

    Parameters
    ----------
    engine : str
        The engine's name as readers know it ("PostgreSQL").
    reason : str
        Why it was not available (from :mod:`syslab.engines`).
    stand_in : str
        What ran instead ("SQLite 3.45", "the model").

    Returns
    -------
    None
    """
    for name, value in (("engine", engine), ("reason", reason), ("stand_in", stand_in)):
        if not isinstance(value, str) or not value:
            raise TypeError(f"{name} must be a non-empty string, got {value!r}")
    _display_markdown(
        f"> **{engine} is not available here**, so this section shows {stand_in} instead. "
        f"Reason: {reason}. To run it on {engine}: install it with your package manager "
        "(the README lists the packages), `pip install syslab[servers]`, or set "
        f"`SYSLAB_{engine.upper().replace('POSTGRESQL', 'POSTGRES')}_URL`."
    )

"""The house plotting style and the small helpers every chapter shares.

Plot helpers compute nothing: they take data that a ``simulate_*`` or
``summarize_*`` function produced, draw it on an optional ``ax`` and return the
:class:`~matplotlib.axes.Axes`. Captions come from MyST (``glue:figure`` or the
cell's ``mystnb.figure`` metadata), never from ``ax.set_title``; axis labels are
lowercase and carry units.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["STYLE_PATH", "axes_or_new", "figure_of", "use_style", "label"]

STYLE_PATH = Path(__file__).with_name("syslab.mplstyle")


def use_style() -> None:
    """Apply the house style (call once in a chapter's setup cell)."""
    plt.style.use(STYLE_PATH)
    # A notebook shows figures inline; the book embeds them as PNG. SVG would be
    # sharper but a scatter of 10^5 points as SVG blows the page-weight budget.
    mpl.rcParams["svg.fonttype"] = "none"


def axes_or_new(ax: Axes | None = None, *, figsize: tuple[float, float] | None = None) -> Axes:
    """Return ``ax``, or the axes of a new figure when ``ax`` is None."""
    if ax is not None:
        if not isinstance(ax, Axes):
            raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
        return ax
    _, new_ax = plt.subplots(figsize=figsize)
    return new_ax


def figure_of(ax: Axes) -> Figure:
    """Return the figure an axes belongs to (for ``glue("fig-...", figure_of(ax))``)."""
    figure = ax.get_figure()
    if figure is None:  # pragma: no cover - only for detached axes
        raise ValueError("ax is not attached to a figure")
    return figure


def label(ax: Axes, x: str, y: str, *, legend: bool = False) -> Axes:
    """Set lowercase axis labels (units in the label, e.g. ``"pool size (connections)"``)."""
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if legend:
        ax.legend()
    return ax

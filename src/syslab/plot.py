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
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["STYLE_PATH", "axes_or_new", "figure_of", "label", "panels", "use_style"]

STYLE_PATH = Path(__file__).with_name("syslab.mplstyle")


def use_style() -> None:
    """Apply the house style (call once in a chapter's setup cell).

    Returns
    -------
    None
    """
    plt.style.use(STYLE_PATH)
    # A notebook shows figures inline; the book embeds them as PNG. SVG would be
    # sharper but a scatter of 10^5 points as SVG blows the page-weight budget.
    mpl.rcParams["svg.fonttype"] = "none"


def axes_or_new(ax: Axes | None = None, *, figsize: tuple[float, float] | None = None) -> Axes:
    """Return ``ax``, or the axes of a new figure when ``ax`` is None.

    Parameters
    ----------
    ax : matplotlib.axes.Axes, optional
        The caller's axes.
    figsize : (float, float), optional
        Inches, for a new figure.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if ax is not None:
        if not isinstance(ax, Axes):
            raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
        return ax
    _, new_ax = plt.subplots(figsize=figsize)
    return new_ax


def figure_of(ax: Axes) -> Figure:
    """Return the figure an axes belongs to.

    Parameters
    ----------
    ax : matplotlib.axes.Axes

    Returns
    -------
    matplotlib.figure.Figure
    """
    figure = ax.get_figure()
    if figure is None:  # pragma: no cover - only for detached axes
        raise ValueError("ax is not attached to a figure")
    return figure


def label(ax: Axes, x: str, y: str, *, legend: bool = False) -> Axes:
    """Set lowercase axis labels (units in the label, e.g. ``"pool size (connections)"``).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    x, y : str
        The x and y labels.
    legend : bool
        Also draw the legend.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``.
    """
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if legend:
        ax.legend()
    return ax


def panels(
    ncols: int,
    nrows: int = 1,
    axes: object | None = None,
    *,
    figsize: tuple[float, float] | None = None,
    sharey: bool = False,
) -> np.ndarray:
    """Return ``axes`` as a flat array of ``nrows * ncols`` Axes, or the axes of a new figure.

    Every multi-panel ``plot_*`` helper starts with this, so callers may pass their own axes.

    Parameters
    ----------
    ncols, nrows : int
        Panel grid, 1 to 6 each.
    axes : sequence of Axes, optional
        The caller's axes (exactly ``nrows * ncols`` of them).
    figsize : (float, float), optional
        Inches; default from the house style, widened per column.
    sharey : bool
        Share the y axis between panels of a new figure.

    Returns
    -------
    numpy.ndarray
        1-D object array of Axes, row by row.
    """
    for name, value in (("ncols", ncols), ("nrows", nrows)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 6:
            raise ValueError(f"{name} must be an int from 1 to 6, got {value!r}")
    if axes is not None:
        flat = np.asarray(axes, dtype=object).ravel()
        if flat.size != nrows * ncols or not all(isinstance(a, Axes) for a in flat):
            raise TypeError(f"axes must be {nrows * ncols} matplotlib Axes, got {axes!r}")
        return flat
    _, new = plt.subplots(nrows, ncols, figsize=figsize, sharey=sharey, squeeze=False)
    return np.asarray(new, dtype=object).ravel()

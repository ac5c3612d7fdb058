"""Claims a page makes about its own results, checked where the result is computed.

Prose written from one run goes stale when the run changes or runs on another machine.
A sentence whose truth depends on an outcome ("throughput stays flat beyond the best
pool", "the soft delete is slower on PostgreSQL") is either glued text computed from the
result (see :func:`phrase`) or backed by a :func:`check` in the cell that computed it::

    claims.check(
        "throughput beyond the best pool stays within 10% of the best",
        holds=worst >= 0.9 * best,
        observed={"best_per_s": best, "worst_per_s": worst},
    )

Two modes, chosen by the ``SYSLAB_CLAIMS`` environment variable:

``strict``
    A false claim raises :class:`ClaimFailed`, naming the claim and the observed values.
    The book build sets it (``_ext/syslab_book.py`` sets it in the build process, whose
    kernels inherit it), and so do the tests, so a page that contradicts its own numbers
    cannot be published.
``note`` (the default, a reader's own run)
    A false claim shows a visible note -- "On this machine: ...; the published run: ..."
    -- and the notebook goes on.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping

__all__ = ["ClaimFailed", "check", "mode", "phrase"]

ENVIRONMENT_VARIABLE = "SYSLAB_CLAIMS"
MODES = ("strict", "note")
MAX_CLAIM_CHARS = 500


class ClaimFailed(AssertionError):
    """A sentence on the page is false for the run beside it."""


def mode() -> str:
    """The claim mode in force: ``"strict"`` or ``"note"``.

    Returns
    -------
    str
        ``SYSLAB_CLAIMS`` if it is one of ``strict``/``note``, else ``"note"``.

    Raises
    ------
    ValueError
        If ``SYSLAB_CLAIMS`` is set to anything else (a typo must not silently relax the build).
    """
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower()
    if not value:
        return "note"
    if value not in MODES:
        raise ValueError(f"{ENVIRONMENT_VARIABLE} must be one of {', '.join(MODES)}; got {value!r}")
    return value


def _format_value(value: object) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        x = float(value)
        if not math.isfinite(x):
            return str(x)
        return f"{x:,.3g}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(value)


def _format_observed(observed: Mapping[str, object] | str) -> str:
    if isinstance(observed, str):
        return observed
    return ", ".join(f"{key} = {_format_value(value)}" for key, value in observed.items())


def check(claim: str, holds: object, *, observed: Mapping[str, object] | str) -> bool:
    """Hold a sentence of the page against the result it describes.

    Parameters
    ----------
    claim : str
        The sentence as the page states it (what must be true), at most 500 characters.
    holds : bool
        Whether it is true for this run (a numpy bool is accepted).
    observed : Mapping[str, object] or str
        The values the verdict rests on, shown in the error or the note.

    Returns
    -------
    bool
        ``holds``, so a chapter can choose its wording after a note.

    Raises
    ------
    ClaimFailed
        In strict mode, when ``holds`` is false.
    """
    if not isinstance(claim, str) or not claim.strip():
        raise TypeError(f"claim must be a non-empty string, got {claim!r}")
    if len(claim) > MAX_CLAIM_CHARS:
        raise ValueError(f"claim must be at most {MAX_CLAIM_CHARS} characters, got {len(claim)}")
    if not isinstance(observed, (str, Mapping)):
        raise TypeError(
            f"observed must be a mapping of names to values or a string, got {type(observed).__name__}"
        )
    try:
        verdict = bool(holds)
    except (TypeError, ValueError) as error:  # e.g. an array with more than one element
        raise TypeError(f"holds must be a single truth value, got {type(holds).__name__}") from error
    if verdict:
        return True
    values = _format_observed(observed)
    if mode() == "strict":
        raise ClaimFailed(f"the page claims: {claim!r}, but this run observed: {values}")
    _show_note(claim, values)
    return False


def _show_note(claim: str, values: str) -> None:
    """A visible note in the notebook (plain text outside IPython)."""
    text = (
        f"On this machine: {values}; so this does not hold here: “{claim}”. "
        "The published run (the book's build, where every claim is checked) satisfied it; "
        "the prose around this cell describes that run."
    )
    try:
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython ships with the book's environment
        print(text)
        return
    display(Markdown(f"> **Note.** {text}"))


def phrase(condition: object, if_true: str, if_false: str) -> str:
    """The wording that is true of a result, for glued text (``"faster"`` / ``"slower"``).

    Parameters
    ----------
    condition : bool
        The outcome.
    if_true, if_false : str
        The words for each outcome.

    Returns
    -------
    str
    """
    for name, value in (("if_true", if_true), ("if_false", if_false)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    try:
        return if_true if bool(condition) else if_false
    except (TypeError, ValueError) as error:
        raise TypeError(f"condition must be a single truth value, got {type(condition).__name__}") from error

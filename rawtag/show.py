"""What chapters display besides figures: tables, audio players, and numbers glued into the prose.

`glue` stores a value under a name for the book's `{glue:text}` role (myst-nb), so the prose cites the
number the chapter just computed instead of a typed-in one; outside a myst-nb install it only returns it.
"""
from __future__ import annotations

import numpy as np


def glue(name: str, value) -> None:
    """Make `value` citable in the chapter's prose as {glue:text}`name` (or `name:.4f`). Without myst-nb
    (a bare Colab kernel) it does nothing: the prose then shows the role's name instead of the number."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=False)


def table(header: list, rows: list, floats: str = ".4f"):
    """A Markdown table (rendered as HTML in the book and in Jupyter); floats formatted with `floats`."""
    from IPython.display import Markdown

    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "n/a" if np.isnan(v) else format(v, floats)
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            return f"{v:,}"
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return Markdown("\n".join(lines))


def audio(samples: np.ndarray, sample_rate: int, seconds: float | None = 5.0):
    """An audio player for the first `seconds` of `samples` (int16 or float); short keeps the book small."""
    from IPython.display import Audio

    x = np.asarray(samples)
    if seconds is not None:
        x = x[: int(seconds * sample_rate)]
    x = x.astype(np.float32) / (32768.0 if np.issubdtype(np.asarray(samples).dtype, np.integer) else 1.0)
    return Audio(x, rate=sample_rate, normalize=False)

"""ipywidgets explorers, each backed by a plain function that draws the same view.

The rendered book has no kernel, so an explorer first shows the plain view of its first choice (a static
figure and player that survive in the HTML), then, in a live kernel with ipywidgets, a control to change it.

Chapter: 01_data
"""
from __future__ import annotations

import numpy as np


def show_clip(data, row: int, seconds: float = 5.0, probs: np.ndarray | None = None):
    """Display one prepared clip: its path and tags, its waveform with sub-clip boundaries, a player, and
    (given `probs`) its predicted tags.

    Chapter: 01_data
    """
    import matplotlib.pyplot as plt
    from IPython.display import display

    from . import plots, show
    from .data.audio import SUBCLIP_SAMPLES

    tags = [t for t, on in zip(data.tags, data.labels[row], strict=True) if on]
    x = np.asarray(data.clips[row])
    title = f"row {row}: {data.paths[row]}\ntags: {', '.join(tags) or '(none)'}"
    display(plots.waveform(x / 32768, data.sample_rate, title, SUBCLIP_SAMPLES))
    plt.close("all")
    display(show.audio(x, data.sample_rate, seconds))
    if probs is not None:
        display(plots.clip_predictions(probs, data.labels[row], data.tags, "predicted (green: true tags)"))
        plt.close("all")


def clip_explorer(data, rows, seconds: float = 5.0, probs: dict | None = None, static: bool | None = None):
    """The first of `rows` drawn by `show_clip` as plain output (the rendered book keeps it: figure,
    player, predictions), then, in a live kernel with ipywidgets, a dropdown over `rows` that redraws it.

    `probs` maps a row to its predicted probabilities (chapter 05); rows are labelled by their path.
    `static` is accepted for older callers and ignored: the plain view is always drawn, so the book never
    shows an empty explorer.

    Chapter: 01_data
    """
    del static
    rows = [int(r) for r in rows]

    def view(row):
        show_clip(data, row, seconds, None if probs is None else probs[row])

    view(rows[0])
    try:
        import ipywidgets as w
        from IPython.display import display
    except ImportError:
        return None
    out = w.Output()
    pick = w.Dropdown(options=[(f"{r}: {data.paths[r]}", r) for r in rows], value=rows[0],
                      description="clip", layout=w.Layout(width="90%"))

    def redraw(change):
        out.clear_output(wait=True)
        with out:
            view(change["new"])

    pick.observe(redraw, names="value")
    box = w.VBox([w.HTML("<b>Explore other clips</b> (needs a live kernel)"), pick, out])
    display(box)
    return box

"""One function per figure the book shows; each returns the matplotlib Figure.

Chapters call these with data their own run produced; the caption names the dataset and profile. A
figure whose plotting code a student may want to change can be rebuilt from the same arrays.
"""
from __future__ import annotations

import numpy as np

PAPER_COLORS = {(1024, 1024): "gold", (1024, 512): "darkorange", (512, 512): "red", (512, 256): "green",
                (256, 256): "blue"}  # the paper's Fig. 4 legend


def _figure(width=8.0, height=3.2, **kw):
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), layout="constrained", **kw)


def tag_counts(counts: dict, title: str, highlight: int | None = None):
    """Clips per tag, most frequent first; the first `highlight` bars (the top-K) in a darker colour.
    Chapter 01."""
    names, values = list(counts), np.array(list(counts.values()))
    order = np.argsort(-values, kind="stable")
    fig, ax = _figure(10, 3.4)
    colors = ["tab:blue" if highlight is None or i < highlight else "lightgray" for i in range(len(order))]
    ax.bar(np.arange(len(order)), values[order], color=colors, width=0.9)
    step = max(1, len(order) // 60)
    ax.set_xticks(np.arange(0, len(order), step), [names[i] for i in order[::step]], rotation=90, fontsize=7)
    ax.set_ylabel("clips")
    ax.set_title(title)
    ax.margins(x=0.005)
    return fig


def cooccurrence(labels: np.ndarray, tags: list, title: str):
    """P(column tag | row tag) for the given tags: how often a clip with the row's tag has the column's.
    Chapter 01."""
    labels = np.asarray(labels, np.float64)
    counts = labels.T @ labels
    cond = counts / np.maximum(np.diag(counts)[:, None], 1)
    fig, ax = _figure(7.5, 6.5)
    im = ax.imshow(cond, cmap="magma", vmin=0, vmax=1)
    ax.set_xticks(range(len(tags)), tags, rotation=90, fontsize=7)
    ax.set_yticks(range(len(tags)), tags, fontsize=7)
    ax.set_xlabel("... also has this tag")
    ax.set_ylabel("a clip with this tag ...")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8, label="conditional frequency")
    return fig


def waveform(x: np.ndarray, sample_rate: int, title: str, subclip_samples: int | None = None):
    """A waveform against time; dashed lines at sub-clip boundaries when `subclip_samples` is given.
    Chapters 01 and 05."""
    x = np.asarray(x, np.float32)
    fig, ax = _figure(9, 2.2)
    t = np.arange(len(x)) / sample_rate
    ax.plot(t, x, linewidth=0.3, color="tab:blue")
    if subclip_samples:
        for b in range(subclip_samples, len(x), subclip_samples):
            ax.axvline(b / sample_rate, color="gray", linestyle="--", linewidth=0.6)
    ax.set_xlabel("seconds")
    ax.set_title(title, fontsize=9)
    ax.margins(x=0)
    return fig


def sample_histograms(samples: dict, title: str, bins: int = 201):
    """One histogram per named array of sample values (log counts), side by side. Chapter 02."""
    fig, axes = _figure(4.0 * len(samples), 2.8, ncols=len(samples))
    for ax, (name, values) in zip(np.atleast_1d(axes), samples.items()):
        values = np.asarray(values, np.float32).ravel()
        ax.hist(values, bins=bins, color="tab:blue", log=True)
        ax.set_title(f"{name}\nrange [{values.min():.3g}, {values.max():.3g}]", fontsize=9)
        ax.set_xlabel("sample value")
    fig.suptitle(title, fontsize=10)
    return fig


def clip_ranges(rowstats: np.ndarray, rows: np.ndarray, title: str):
    """Each clip's peak |sample| (from its stored min and max), as a histogram, in int16 units. Chapter 02."""
    peak = np.maximum(-rowstats[rows, 0].astype(np.int64), rowstats[rows, 1].astype(np.int64)) / 32768
    fig, ax = _figure(6, 2.8)
    ax.hist(peak, bins=40, color="tab:orange")
    ax.set_xlabel("peak |sample| of a clip (full scale = 1)")
    ax.set_ylabel("clips")
    ax.set_title(title, fontsize=10)
    return fig


def _label_color(label):
    return PAPER_COLORS.get(label) if isinstance(label, tuple) else None


def epoch_curves(histories: dict, title: str, key: str = "valid_roc_auc", ylabel: str = "validation ROC-AUC"):
    """A per-epoch quantity (default validation ROC-AUC, the paper's Figs. 2 and 6) of several runs.
    Keys of `histories` are legend labels; a (length, stride) tuple gets the paper's Fig. 4 colour."""
    fig, ax = _figure(7, 3.4)
    for label, history in histories.items():
        epochs = [e["epoch"] for e in history["epochs"]]
        ax.plot(epochs, [e[key] for e in history["epochs"]], marker="o", markersize=3,
                label=_legend(label), color=_label_color(label))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def loss_curves(histories: dict, title: str):
    """Training loss averaged over every N iterations (the paper's Figs. 3 and 7), several runs."""
    fig, ax = _figure(7, 3.4)
    for label, history in histories.items():
        its = history["iterations"]
        ax.plot([i["iteration"] for i in its], [i["loss"] for i in its], linewidth=1, label=_legend(label),
                color=_label_color(label))
    ax.set_xlabel("iteration (mini-batch)")
    ax.set_ylabel("training BCE loss")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def _legend(label) -> str:
    return f"length {label[0]}, stride {label[1]}" if isinstance(label, tuple) else str(label)


def per_tag_auc(per_tag: dict, title: str):
    """Per-tag ROC-AUC bars, best first (tags that could not be scored are left out). Chapter 05."""
    items = sorted(((t, v) for t, v in per_tag.items() if not np.isnan(v)), key=lambda tv: -tv[1])
    fig, ax = _figure(10, 3.2)
    ax.bar(range(len(items)), [v for _, v in items], color="tab:green")
    ax.axhline(0.5, color="gray", linestyle="--", linewidth=0.8, label="chance")
    ax.set_xticks(range(len(items)), [t for t, _ in items], rotation=90, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("ROC-AUC")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.margins(x=0.005)
    return fig


def clip_predictions(probs: np.ndarray, truth: np.ndarray, tags: list, title: str, top: int = 12):
    """A clip's predicted probabilities for its top tags and its true tags; true tags in green.
    Chapter 05."""
    probs, truth = np.asarray(probs), np.asarray(truth).astype(bool)
    shown = list(dict.fromkeys([*np.argsort(-probs)[:top], *np.flatnonzero(truth)]))
    shown.sort(key=lambda j: -probs[j])
    fig, ax = _figure(7, 0.25 * len(shown) + 1.0)
    ax.barh(range(len(shown)), probs[shown], color=["tab:green" if truth[j] else "lightgray" for j in shown])
    ax.set_yticks(range(len(shown)), [tags[j] + (" (true)" if truth[j] else "") for j in shown], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("predicted probability")
    ax.set_title(title, fontsize=9)
    return fig


def clip_losses(losses: np.ndarray, marked: dict, title: str):
    """Histogram of per-clip BCE with the named clips marked. Chapter 05."""
    fig, ax = _figure(7, 2.8)
    ax.hist(losses, bins=40, color="tab:blue")
    for i, (name, value) in enumerate(marked.items()):
        ax.axvline(value, color=f"C{i + 1}", linestyle="--", label=f"{name}: {value:.4f}")
    ax.set_xlabel("binary cross-entropy of a clip (mean over tags)")
    ax.set_ylabel("clips")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return fig


def bars(values: dict, title: str, ylabel: str, reference: float | None = None, reference_label: str = ""):
    """A bar per named value (an ablation step, a model), with an optional dashed reference line."""
    fig, ax = _figure(max(5, 1.1 * len(values)), 3.2)
    names = list(values)
    ax.bar(range(len(names)), [values[n] for n in names], color="tab:purple")
    for i, n in enumerate(names):
        ax.text(i, values[n], f"{values[n]:.3f}", ha="center", va="bottom", fontsize=8)
    if reference is not None:
        ax.axhline(reference, color="gray", linestyle="--", linewidth=0.8, label=reference_label)
        ax.legend(fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    lo = min(values.values())
    ax.set_ylim(max(0.0, lo - 0.1), 1.0)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return fig


def filter_responses(weights: np.ndarray, sample_rate: int, title: str, n_fft: int = 512):
    """Magnitude responses (dB) of first-layer filters [filters, 1, taps], one row per filter sorted by peak
    frequency (a curve when there is a single filter). Chapter 07: what the front ends learned."""
    w = np.asarray(weights, np.float64).reshape(len(weights), -1)
    response = 20 * np.log10(np.abs(np.fft.rfft(w, n=max(n_fft, w.shape[1]), axis=1)) + 1e-9)
    freqs = np.fft.rfftfreq(max(n_fft, w.shape[1]), 1 / sample_rate)
    fig, ax = _figure(7, 3.2)
    if len(w) == 1:
        ax.plot(freqs, response[0], color="tab:blue")
        ax.set_ylabel("gain (dB)")
    else:
        order = np.argsort(response.argmax(axis=1), kind="stable")
        shown = response[order] - response[order].max(axis=1, keepdims=True)
        im = ax.imshow(shown, aspect="auto", origin="lower", cmap="viridis", vmin=-30, vmax=0,
                       extent=[freqs[0], freqs[-1], 0, len(w)])
        ax.set_ylabel("filter (sorted by peak)")
        fig.colorbar(im, ax=ax, label="dB re. each filter's peak")
    ax.set_xlabel("frequency (Hz)")
    ax.set_title(title, fontsize=10)
    return fig

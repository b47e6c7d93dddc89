"""One function per figure the book shows; each returns the matplotlib Figure.

Chapters call these with data their own run produced; the caption names the dataset and profile. A
figure whose plotting code a student may want to change can be rebuilt from the same arrays.

Chapter: 01_data
"""
from __future__ import annotations

import textwrap

import numpy as np

# The paper's Fig. 4 legend, one colour per (length, stride) setting of the first layer, in the paper's order.
# The paper draws 1024/1024 in yellow, unreadable on white: brown stands in for it. Orange, red, green and
# blue are the paper's own for 1024/512, 512/512, 512/256 and 256/256.
PAPER_COLORS = {(1024, 1024): "tab:brown", (1024, 512): "tab:orange", (512, 512): "tab:red",
                (512, 256): "tab:green", (256, 256): "tab:blue"}
# Runs whose label has no paper colour take these in turn (no yellow: it cannot be read on white).
PALETTE = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:brown", "tab:orange", "tab:pink",
           "tab:gray", "black", "tab:cyan")
# The best and the worst clips of chapter 05, in every figure that marks them (green as a hit, red as a miss).
MARK_COLORS = {"best": "tab:green", "worst": "tab:red"}


def _figure(width=8.0, height=3.2, **kw):
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), layout="constrained", **kw)


def tag_counts(counts: dict, title: str, highlight: int | None = None):
    """Clips per tag, most frequent first; the first `highlight` bars (the top-K) in a darker colour.

    Chapter: 01_data
    """
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

    Chapter: 01_data
    """
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

    Chapter: 01_data
    """
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


def score_roll(parts, title: str, seconds: float = 8.0):
    """A score as a piano roll: each part's notes (`rawtag.data.synth.Part`) as bars at their MIDI key over
    time, one colour per part; drum hits as ticks at their drum's key (General MIDI: 36 kick, 38 snare, 42
    hi-hat, 60-64 bongos and congas).

    Chapter: 01_data
    """
    fig, ax = _figure(9, 3.4)
    for i, part in enumerate(parts):
        notes = [n for n in part.notes if n[0] < seconds]
        color = f"C{i % 10}"
        if part.drum:
            ax.scatter([n[0] for n in notes], [n[1] for n in notes], marker="|", s=40, color=color, label=part.name)
        else:
            ax.hlines([n[1] for n in notes], [n[0] for n in notes], [min(n[0] + n[2], seconds) for n in notes],
                      color=color, linewidth=2.5, label=part.name)
    ax.set_xlim(0, seconds)
    ax.set_xlabel("seconds")
    ax.set_ylabel("MIDI key (60 = middle C)")
    ax.set_title(title, fontsize=9)
    fig.legend(fontsize=7, loc="outside right center", frameon=False)
    return fig


def sample_histograms(samples: dict, title: str, bins: int = 201):
    """One histogram per named array of sample values (log counts), side by side.

    Chapter: 02_normalization
    """
    fig, axes = _figure(4.0 * len(samples), 2.8, ncols=len(samples))
    for ax, (name, values) in zip(np.atleast_1d(axes), samples.items(), strict=True):
        values = np.asarray(values, np.float32).ravel()
        ax.hist(values, bins=bins, color="tab:blue", log=True)
        ax.set_title(f"{name}\nrange [{values.min():.3g}, {values.max():.3g}]", fontsize=9)
        ax.set_xlabel("sample value")
    fig.suptitle(title, fontsize=10)
    return fig


def clip_ranges(rowstats: np.ndarray, rows: np.ndarray, title: str):
    """Each clip's peak |sample| (from its stored min and max), as a histogram, in int16 units.

    Chapter: 02_normalization
    """
    peak = np.maximum(-rowstats[rows, 0].astype(np.int64), rowstats[rows, 1].astype(np.int64)) / 32768
    fig, ax = _figure(6, 2.8)
    ax.hist(peak, bins=40, color="tab:orange")
    ax.set_xlabel("peak |sample| of a clip (full scale = 1)")
    ax.set_ylabel("clips")
    ax.set_title(title, fontsize=10)
    return fig


def _legend(label) -> str:
    return f"length {label[0]}, stride {label[1]}" if isinstance(label, tuple) else str(label)


def _color(label, i: int) -> str:
    """The paper's Fig. 4 colour for a (length, stride) label, else the i-th colour of PALETTE."""
    return PAPER_COLORS.get(label, PALETTE[i % len(PALETTE)])


def _runs(value) -> list:
    """One history, or a list of histories of runs that differ only in their seed."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _mean_band(ax, x, ys, color, label, bands=True, **kw):
    """The mean over seeds (rows of `ys`) as a line; with several seeds, a shaded min-max band."""
    ys = np.asarray(ys, np.float64)
    if len(ys) > 1:
        label += f" (mean of {len(ys)} seeds{', band: range' if bands else ''})"
    ax.plot(x, ys.mean(axis=0), color=color, label=label, **kw)
    if len(ys) > 1 and bands:
        ax.fill_between(x, ys.min(axis=0), ys.max(axis=0), color=color, alpha=0.2, linewidth=0)


def _finish(ax, title, xlabel, ylabel):
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def epoch_curves(histories: dict, title: str, key: str = "valid_roc_auc", ylabel: str = "validation ROC-AUC",
                 bands: bool = True, reference: dict | None = None):
    """A per-epoch quantity (default validation ROC-AUC, the paper's Figs. 2 and 6) of several runs.

    `histories` maps a legend label to a history (`rawtag.train` writes {"epochs": [{"epoch", key, ...}]})
    or to a list of histories of seeds: their mean per epoch is drawn, with the min-max band over seeds
    when `bands`. A (length, stride) label gets the paper's Fig. 4 colour (PAPER_COLORS). `reference` maps
    labels to values drawn as dashed horizontal lines (e.g. the paper's Table 1).

    Chapter: 02_normalization
    """
    fig, ax = _figure(7, 3.4)
    for i, (label, runs) in enumerate(histories.items()):
        tables = [{e["epoch"]: e[key] for e in h["epochs"]} for h in _runs(runs)]
        epochs = sorted(set.intersection(*map(set, tables)))
        _mean_band(ax, epochs, [[t[e] for e in epochs] for t in tables], _color(label, i), _legend(label),
                   bands, marker="o" if len(epochs) <= 30 else None, markersize=3)
    for label, value in (reference or {}).items():
        ax.axhline(value, color=PAPER_COLORS.get(label, "gray"), linestyle="--", linewidth=1,
                   label=f"{_legend(label)} = {value:.4f}")
    _finish(ax, title, "epoch", ylabel)
    return fig


def _moving_average(y, k: int):
    """Centred moving average of k points; near the ends, the mean of the points that exist."""
    y, k = np.asarray(y, np.float64), max(1, min(int(k), len(y)))
    ones = np.ones(k)
    return np.convolve(y, ones, "same") / np.convolve(np.ones(len(y)), ones, "same")


def loss_curves(histories: dict, title: str, smooth: int = 5):
    """The training loss logged every few iterations (the paper's Figs. 3 and 7) of several runs, against
    epochs: a centred moving average of `smooth` logged points, the raw values faint behind it.

    `histories` as for `epoch_curves` (a history or a list of seeds' histories per label); each history's
    "iterations" holds {"iteration", "epoch", "loss"}. An iteration's position in epochs is iteration / N,
    N = the iterations per epoch read from the data (the largest iteration / epoch ratio logged).

    Chapter: 03_base_cnn
    """
    fig, ax = _figure(7, 3.4)
    for i, (label, runs) in enumerate(histories.items()):
        logs = [h["iterations"] for h in _runs(runs)]
        n = min(map(len, logs))
        if n == 0:
            continue
        per_epoch = max(r["iteration"] / r["epoch"] for r in logs[0])
        x = np.array([r["iteration"] for r in logs[0][:n]]) / per_epoch
        raw = np.array([[r["loss"] for r in log[:n]] for log in logs])
        color = _color(label, i)
        if smooth > 1:
            ax.plot(x, raw.mean(axis=0), color=color, alpha=0.25, linewidth=0.8)
        _mean_band(ax, x, [_moving_average(r, smooth) for r in raw], color, _legend(label), linewidth=1.4)
    what = f"moving average of {smooth} logged points" if smooth > 1 else "as logged"
    _finish(ax, title, "epoch", f"training BCE loss\n({what})")
    return fig


def train_valid_curves(history: dict, title: str):
    """Training and validation loss per epoch (left) and validation ROC-AUC per epoch (right) of one run:
    the test of the paper's claim that the base CNN did not overfit (section VII). The lowest validation
    loss and the highest AUC are marked. The training loss is the epoch's running mean, taken while the
    weights still moved; the validation loss is measured after the epoch (`rawtag.learned.train_valid_gap`
    gives the numbers).

    Chapter: 03_base_cnn
    """
    rows = history["epochs"]
    e = np.array([r["epoch"] for r in rows])
    train, valid = np.array([r["train_loss"] for r in rows]), np.array([r["valid_loss"] for r in rows])
    auc = np.array([r["valid_roc_auc"] for r in rows], np.float64)
    fig, (left, right) = _figure(10, 3.2, ncols=2)
    marker = "o" if len(e) <= 30 else None
    left.plot(e, train, color="tab:blue", marker=marker, markersize=3, label="training (mean over the epoch)")
    left.plot(e, valid, color="tab:red", marker=marker, markersize=3, label="validation (after the epoch)")
    low = int(np.nanargmin(valid))
    left.axvline(e[low], color="tab:red", linestyle=":", linewidth=0.8,
                 label=f"lowest validation loss: epoch {e[low]}")
    _finish(left, "binary cross-entropy per epoch", "epoch", "loss")
    right.plot(e, auc, color="tab:green", marker=marker, markersize=3, label="validation ROC-AUC")
    if np.isfinite(auc).any():
        high = int(np.nanargmax(auc))
        right.axvline(e[high], color="tab:green", linestyle=":", linewidth=0.8, label=f"highest: epoch {e[high]}")
    _finish(right, "validation ROC-AUC per epoch", "epoch", "ROC-AUC")
    for ax in (left, right):
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title, fontsize=10)
    return fig


def _mark_thresholds(ax, xs, ys, thresholds):
    """Write each point's score threshold beside it (for worked examples with a handful of clips)."""
    for x, y, t in zip(xs, ys, thresholds, strict=True):
        if np.isfinite(t):
            left = x < 0.5
            ax.annotate(f"≥{t:.2g}", (x, y), textcoords="offset points", xytext=(5 if left else -5, -11),
                        ha="left" if left else "right", fontsize=7, color="dimgray")


def _one_tag(y_true, scores):
    y_true, scores = np.asarray(y_true).astype(int).ravel(), np.asarray(scores, np.float64).ravel()
    if len(set(y_true)) != 2:
        raise ValueError("a ROC or PR curve needs both positive and negative clips of the tag")
    return y_true, scores, len(y_true) <= 20


def roc_curve(y_true, scores, title: str, label: str = ""):
    """The ROC curve of ONE tag over clips (1-D arrays of 0/1 and scores), its AUC (scikit-learn) in the
    legend, the diagonal of chance; with at most 20 clips every threshold is a marked, labelled point.
    A worked example of how ROC-AUC is computed; chapter 05 draws one tag's curve.

    Chapter: 03_base_cnn
    """
    from sklearn import metrics as sk

    y_true, scores, few = _one_tag(y_true, scores)
    fpr, tpr, thresholds = sk.roc_curve(y_true, scores, drop_intermediate=not few)
    auc = sk.roc_auc_score(y_true, scores)
    fig, ax = _figure(4.6, 4.4)
    ax.plot(fpr, tpr, color="tab:blue", marker="o" if few else None, markersize=4,
            label=f"{label + ': ' if label else ''}ROC-AUC = {auc:.3f}")
    if few:
        _mark_thresholds(ax, fpr, tpr, thresholds)
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=0.8, label="chance (AUC 0.5)")
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), aspect="equal")
    _finish(ax, title, "false positive rate", "true positive rate (recall)")
    return fig


def pr_curve(y_true, scores, title: str, label: str = ""):
    """The precision-recall curve of ONE tag, its PR-AUC (average precision, scikit-learn) in the legend;
    chance is the positives' base rate. Drawn as steps (as scikit-learn does) whose area is the
    average precision. Few clips (<= 20): every threshold is a marked, labelled point.
    Drawn beside `roc_curve`.

    Chapter: 03_base_cnn
    """
    from sklearn import metrics as sk

    y_true, scores, few = _one_tag(y_true, scores)
    precision, recall, thresholds = sk.precision_recall_curve(y_true, scores)
    ap = sk.average_precision_score(y_true, scores)
    fig, ax = _figure(4.6, 4.4)
    ax.plot(recall, precision, drawstyle="steps-post", color="tab:blue", marker="o" if few else None,
            markersize=4, label=f"{label + ': ' if label else ''}PR-AUC (average precision) = {ap:.3f}")
    if few:
        _mark_thresholds(ax, recall[:-1], precision[:-1], thresholds)
    base = y_true.mean()
    ax.axhline(base, color="gray", linestyle="--", linewidth=0.8, label=f"chance: base rate {base:.3f}")
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.05), aspect="equal")
    _finish(ax, title, "recall", "precision")
    return fig


def per_tag_auc(per_tag: dict, title: str, positives: dict | None = None, min_positives: int = 5):
    """Per-tag ROC-AUC bars, best first (NaN: tags that could not be scored, left out), chance dashed.
    Given `positives` (tag -> positive clips), each bar is labelled with its count and tags with fewer
    than `min_positives` are drawn light grey: their AUC rests on a handful of clips.

    Chapter: 05_qualitative
    """
    from matplotlib.patches import Patch

    items = sorted(((t, v) for t, v in per_tag.items() if not np.isnan(v)), key=lambda tv: -tv[1])
    few = [positives is not None and positives.get(t, min_positives) < min_positives for t, _ in items]
    fig, ax = _figure(10, 3.4)
    ax.bar(range(len(items)), [v for _, v in items], color=["lightgray" if f else "tab:green" for f in few])
    handles = [ax.axhline(0.5, color="gray", linestyle="--", linewidth=0.8, label="chance")]
    if positives is not None:
        for i, (t, v) in enumerate(items):
            if t in positives:
                ax.text(i, v + 0.01, str(positives[t]), ha="center", va="bottom", rotation=90, fontsize=6)
        handles.append(Patch(color="tab:green", label=f"{min_positives} or more positives"))
        if any(few):
            handles.append(Patch(color="lightgray", label=f"fewer than {min_positives} positives: unreliable"))
    ax.set_xticks(range(len(items)), [t for t, _ in items], rotation=90, fontsize=7)
    ax.set_ylim(0, 1.1 if positives is not None else 1)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("ROC-AUC" + (" (above: positive clips)" if positives is not None else ""))
    ax.set_title(title, fontsize=10)
    fig.legend(handles=handles, fontsize=8, loc="outside lower center", ncols=len(handles), frameon=False)
    ax.margins(x=0.005)
    return fig


def auc_vs_share(shares: dict, aucs: dict, title: str, positives: dict | None = None, min_positives: int = 5,
                 rho: tuple | None = None, xlabel: str = "share of the tag's clips' energy the filter passes"):
    """One point per tag: its validation ROC-AUC against a per-tag quantity `shares` (e.g.
    `rawtag.learned.tag_shares` of `passed_share`), each point labelled with the tag. Tags with fewer than
    `min_positives` positives (given `positives`) are light grey; tags with a NaN on either axis are left
    out. `rho` = (value, low, high), Spearman's rank correlation over the reliable tags with its interval,
    goes into the legend.

    Chapter: 05_qualitative
    """
    tags = [t for t in aucs if t in shares and np.isfinite(aucs[t]) and np.isfinite(shares[t])]
    few = {t: positives is not None and positives.get(t, min_positives) < min_positives for t in tags}
    fig, ax = _figure(7, 4.2)
    for unreliable, color, label in ((False, "tab:green", f"{min_positives} or more positives"),
                                     (True, "lightgray", f"fewer than {min_positives} positives")):
        group = [t for t in tags if few[t] == unreliable]
        if group:
            ax.scatter([shares[t] for t in group], [aucs[t] for t in group], color=color, s=18, label=label,
                       zorder=3 if not unreliable else 2)
    for t in tags:
        ax.annotate(str(t), (shares[t], aucs[t]), fontsize=6, xytext=(3, 2), textcoords="offset points",
                    color="dimgray" if few[t] else "black")
    ax.axhline(0.5, color="gray", linestyle="--", linewidth=0.8, label="chance")
    if rho is not None and np.isfinite(rho[0]):
        ax.plot([], [], " ", label=f"Spearman rho {rho[0]:+.2f} [{rho[1]:+.2f}, {rho[2]:+.2f}]")
    _finish(ax, textwrap.fill(title, 80), xlabel, "validation ROC-AUC")
    return fig


def intervals(values: dict, title: str, xlabel: str, reference: float | None = None, reference_label: str = ""):
    """Dot-and-whisker rows, in the given order top to bottom: each name's point and its interval.
    `values` maps names to (point, low, high) or to `rawtag.metrics.Interval`; `reference` draws a vertical
    dashed line (0.5 for chance, 0 for a difference). Bootstrap intervals of AUCs and of differences,
    seed intervals: every chapter from 02 on.

    Chapter: 02_normalization
    """
    names = list(values)
    rows = np.array([(v.value, v.low, v.high) if hasattr(v, "low") else tuple(v) for v in values.values()],
                    np.float64).reshape(-1, 3)
    point, low, high = rows.T
    labels = [textwrap.fill(f"{n}: {p:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if np.isfinite(lo + hi) else " (no interval)"),
                            34) for n, p, lo, hi in zip(names, point, low, high, strict=True)]
    lines = max(label.count("\n") + 1 for label in labels)  # long step names wrap instead of squashing the axes
    fig, ax = _figure(8, (0.3 + 0.15 * lines) * len(names) + 1.2)
    y = np.arange(len(names))
    ax.errorbar(point, y, xerr=[point - low, high - point], fmt="o", color="tab:blue", capsize=4)
    if reference is not None:
        ax.axvline(reference, color="gray", linestyle="--", linewidth=0.8, label=reference_label or None)
        if reference_label:
            fig.legend(fontsize=8, loc="outside lower center", frameon=False)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return fig


def yardsticks(panels: dict, title: str, ylabel: str = "macro ROC-AUC (95 % interval)"):
    """Two yardsticks side by side: for each panel (e.g. a model), steps along x (ladder steps, filter
    bands) and, per yardstick (the stand-in's validation clips, real music), a point with its interval at
    each step. `panels` maps a panel's title to {yardstick: {step: Interval}}. Chapter 08 draws chapter
    06's ladder and the band test with it; 0.5, chance, is dashed.

    Chapter: 08_real_music
    """
    most = max(len(next(iter(series.values()))) for series in panels.values())  # steps in the widest panel
    fig, axes = _figure(max(4.0, 1.4 * most) * len(panels) + 0.6, 3.6, ncols=len(panels), sharey=True,
                        squeeze=False)
    for ax, (name, series) in zip(axes[0], panels.items(), strict=True):
        for i, (label, steps) in enumerate(series.items()):
            values = np.array([[iv.value, iv.low, iv.high] for iv in steps.values()], np.float64)
            x = np.arange(len(steps)) + (i - (len(series) - 1) / 2) * 0.12
            ax.errorbar(x, values[:, 0], yerr=[values[:, 0] - values[:, 1], values[:, 2] - values[:, 0]],
                        marker="o", capsize=3, color=PALETTE[i], label=label if ax is axes[0][0] else None)
        ax.axhline(0.5, color="gray", linestyle="--", linewidth=0.8)
        ax.set_xticks(np.arange(len(steps)), [textwrap.fill(str(s), 14) for s in steps], fontsize=8)
        if len(panels) > 1:
            ax.set_title(name, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    fig.suptitle(title, fontsize=10)
    fig.legend(fontsize=8, loc="outside lower center", ncols=2, frameon=False)
    return fig


# Box colours of `architecture`, by what a stage does (light fills, black text).
KIND_COLORS = {"front end / conv": "#9ecae1", "conv + max-pool": "#a1d99b", "pool": "#fdae6b",
               "dropout": "#d9d9d9", "dense": "#bcbddc", "reshape": "#f0f0f0"}


def _kind(module, before, after) -> str:
    if module is None:  # no weights: a reshape keeps every number, a pooling drops some
        return "reshape" if before.numel() == after.numel() else "pool"
    names = {type(m).__name__ for m in module.modules()}
    if "Conv1d" in names and "MaxPool1d" in names:
        return "conv + max-pool"
    if "Linear" in names:
        return "dense"
    return "dropout" if names == {"Dropout"} else "front end / conv"


def architecture(model, title: str, input_shape=(1, 10, 1, 34950)):
    """A block diagram, top to bottom, of a model with a `stages(x)` generator (rawtag.models): one box per
    stage with its name, output shape and parameters, coloured by kind (KIND_COLORS), for a zero input
    of `input_shape` run in eval mode. The base CNN is the paper's Fig. 1; chapter 06 draws
    the improved CNN (Fig. 5), chapter 07 the sample-level models.

    Chapter: 03_base_cnn
    """
    import torch
    from matplotlib.patches import FancyBboxPatch, Patch

    from .models import count_parameters

    was_training, rows = model.training, []
    model.eval()
    with torch.no_grad():
        before = torch.zeros(input_shape, device=next(model.parameters()).device)
        for name, module, out in model.stages(before):
            n = count_parameters(module) if module is not None else 0
            rows.append((name, list(out.shape), n, _kind(module, before, out)))
            before = out
    model.train(was_training)

    width, box, gap = 3.8, 0.62, 0.32  # inches: the axes are drawn 1:1 in inches
    height = 0.6 + len(rows) * (box + gap)
    fig, ax = _figure(width + 1.9, height + 0.5)
    ax.set(xlim=(0, width), ylim=(0, height), aspect="equal")
    ax.axis("off")
    ax.text(width / 2, height - 0.25, f"input {list(input_shape)}", ha="center", va="center", fontsize=9)
    above = height - 0.4  # where the next arrow starts
    for i, (name, shape, n, kind) in enumerate(rows):
        top = height - 0.5 - gap - i * (box + gap)
        ax.annotate("", xy=(width / 2, top), xytext=(width / 2, above), arrowprops=dict(arrowstyle="-|>"))
        ax.add_patch(FancyBboxPatch((0.05, top - box), width - 0.1, box, boxstyle="round,pad=0,rounding_size=0.08",
                                    facecolor=KIND_COLORS[kind], edgecolor="dimgray"))
        shape_text = f"{shape}" + (f"  ·  {n:,} parameters" if n else "")
        ax.text(width / 2, top - box / 2, f"{name}\n{shape_text}", ha="center", va="center", fontsize=8.5,
                linespacing=1.4)
        above = top - box
    kinds = dict.fromkeys(k for *_, k in rows)
    fig.legend(handles=[Patch(facecolor=KIND_COLORS[k], edgecolor="dimgray", label=k) for k in kinds],
               loc="outside right center", fontsize=8, title="stage", title_fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def feature_maps(maps: list, sample_rate: int, stride: int, title: str):
    """What each stage of a `FrameCNN` outputs for one sub-clip (`rawtag.learned.feature_maps`), top to
    bottom, each panel titled with the stage and its output shape for the whole clip: the input waveform
    and the one-filter front end as lines, the conv + pool pairs as images (channel x time, one colour scale
    per panel), and the vectors after global pooling as bars. Time in seconds: a step of the layers above
    the front end is `stride` samples (their windows start a few steps late, not drawn).

    Chapter: 03_base_cnn
    """
    shown = [m for m in maps if not m["name"].startswith(("reshape", "dropout"))]
    heights = [1.0 if np.ndim(m["values"]) == 1 or np.shape(m["values"])[0] == 1 else 1.4 for m in shown]
    fig, axes = _figure(9, 1.05 * sum(heights) + 0.6, nrows=len(shown), gridspec_kw={"height_ratios": heights})
    axes = np.atleast_1d(axes)
    logits = False  # the logits and whatever pools them: green
    for ax, m in zip(axes, shown, strict=True):
        logits = logits or "logits" in m["name"]
        v = np.asarray(m["values"], np.float64)
        name = f"{m['name']}: {list(m['shape'])}"
        if m["name"].startswith("flatten"):  # the input samples
            x = v.reshape(-1)
            ax.plot(np.arange(len(x)) / sample_rate, x, color="tab:blue", linewidth=0.3)
            ax.set_xlim(0, len(x) / sample_rate)
            ax.set_ylabel("sample", fontsize=7)
        elif v.ndim == 2 and v.shape[0] == 1:  # one channel over time: the front end
            t = np.arange(v.shape[1]) * stride / sample_rate
            if m.get("before_relu") is not None:
                ax.plot(t, np.asarray(m["before_relu"]).reshape(-1), color="gray", linewidth=0.5, alpha=0.7,
                        label="before the ReLU")
            ax.plot(t, v[0], color="tab:orange", linewidth=0.8, label="output (after the ReLU)")
            if m.get("before_relu") is not None:
                ax.legend(fontsize=6, loc="upper right", ncols=2)
            ax.set_xlim(0, len(maps[0]["values"].reshape(-1)) / sample_rate)
            ax.set_ylabel("output", fontsize=7)
        elif v.ndim == 2:  # channels x time
            seconds = v.shape[1] * stride / sample_rate
            im = ax.imshow(v, aspect="auto", origin="lower", cmap="magma", interpolation="nearest",
                           extent=[0, seconds, 0, v.shape[0]])
            ax.set_xlim(0, len(maps[0]["values"].reshape(-1)) / sample_rate)
            ax.set_ylabel("channel", fontsize=7)
            fig.colorbar(im, ax=ax, pad=0.01, fraction=0.03)
        else:  # a vector
            v = v.reshape(-1)
            ax.bar(np.arange(len(v)), v, color="tab:green" if logits else "tab:purple", width=0.85)
            ax.axhline(0, color="gray", linewidth=0.5)
            ax.set_xlim(-0.6, len(v) - 0.4)
            ax.set_ylabel("value", fontsize=7)
        ax.set_title(name, fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    temporal = [ax for ax, m in zip(axes, shown, strict=True)
                if np.ndim(m["values"]) == 2 or m["name"].startswith("flatten")]
    if temporal:
        temporal[-1].set_xlabel("time in the sub-clip (s)", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def spectrograms(panels: dict, sample_rate: int, title: str, n_mels: int = 64, n_fft: int = 512, hop: int = 256):
    """Log-mel spectrograms (dB re. the loudest bin of all panels, one colour scale, 80 dB range) of named
    1-D sample arrays, in a grid. Hann-windowed numpy STFT, librosa's mel filterbank.
    One clip per synthetic style; chapter 05 draws the best and worst clips.

    Chapter: 01_data
    """
    import librosa
    from numpy.lib.stride_tricks import sliding_window_view

    mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmax=sample_rate / 2)
    window = np.hanning(n_fft + 1)[:-1]
    specs = {}
    for name, x in panels.items():
        x = np.asarray(x, np.float64).ravel()
        frames = sliding_window_view(np.pad(x, (0, max(0, n_fft - len(x)))), n_fft)[::hop] * window
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        specs[name] = (10 * np.log10(mel @ power.T + 1e-12), len(x) / sample_rate)
    top = max(s.max() for s, _ in specs.values())
    ncols = min(3, len(specs))
    nrows = -(-len(specs) // ncols)
    titles = {name: textwrap.fill(name, 40) for name in specs}  # long names wrap instead of running into each other
    lines = max(t.count("\n") + 1 for t in titles.values())
    fig, axes = _figure(3.6 * ncols + 0.8, (2.2 + 0.2 * lines) * nrows + 0.4, nrows=nrows, ncols=ncols, squeeze=False)
    centres = librosa.mel_frequencies(n_mels + 2, fmax=sample_rate / 2)[1:-1]
    ticks = np.linspace(0, n_mels - 1, 5).round().astype(int)
    for ax, (name, (s, seconds)) in zip(axes.flat, specs.items(), strict=False):
        im = ax.imshow(s - top, aspect="auto", origin="lower", cmap="magma", vmin=-80, vmax=0,
                       extent=[0, seconds, 0, n_mels])
        ax.set_yticks(ticks + 0.5, [f"{centres[t]:.0f}" for t in ticks])
        ax.tick_params(labelsize=7)
        ax.set_title(titles[name], fontsize=9, color=MARK_COLORS.get(name.split(":")[0], "black"))
        ax.set_xlabel("seconds", fontsize=8)
        ax.set_ylabel("mel band (Hz)", fontsize=8)
    for ax in axes.flat[len(specs):]:
        ax.axis("off")
    fig.colorbar(im, ax=axes, label="dB re. the loudest bin", shrink=0.9)
    fig.suptitle(title, fontsize=10)
    return fig


def clip_predictions(probs: np.ndarray, truth: np.ndarray, tags: list, title: str, top: int = 12):
    """A clip's predicted probabilities for its top tags and its true tags; true tags in green.

    Chapter: 05_qualitative
    """
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
    """Histogram of per-clip BCE with the named clips marked.

    Chapter: 05_qualitative
    """
    fig, ax = _figure(7, 2.8)
    ax.hist(losses, bins=40, color="tab:blue")
    for i, (name, value) in enumerate(marked.items()):
        ax.axvline(value, color=MARK_COLORS.get(name, PALETTE[(i + 1) % len(PALETTE)]), linestyle="--",
                   label=f"{name}: {value:.4f}")
    ax.set_xlabel("binary cross-entropy of a clip (mean over tags)")
    ax.set_ylabel("clips")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return fig


def bars(values: dict, title: str, ylabel: str, reference: float | None = None, reference_label: str = ""):
    """A bar per named value (an ablation step, a model), with an optional dashed reference line: for a
    ladder of changes like chapter 06's.

    Chapter: 06_improvements
    """
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


def _responses(weights, sample_rate: int, n_fft: int):
    """Filters [F, 1, L] or [F, L] as [F, L], their frequencies, and magnitude responses in dB re. each
    filter's peak (zero-padded to n_fft, or to L if longer)."""
    w = np.asarray(weights, np.float64)
    w = w.reshape(-1, w.shape[-1])
    n = max(n_fft, w.shape[1])
    response = 20 * np.log10(np.abs(np.fft.rfft(w, n=n, axis=1)) + 1e-12)
    return w, np.fft.rfftfreq(n, 1 / sample_rate), response - response.max(axis=1, keepdims=True)


def octave_bands(sample_rate: int, lowest: float = 31.25) -> list[tuple[float, float]]:
    """Octave bands [0, lowest], [lowest, 2 lowest], ... up to the Nyquist frequency, for `filter_spectrum`.

    Chapter: 03_base_cnn
    """
    edges = [0.0, lowest]
    while edges[-1] * 2 < sample_rate / 2:
        edges.append(edges[-1] * 2)
    edges.append(sample_rate / 2)
    return list(zip(edges[:-1], edges[1:], strict=True))


def filter_spectrum(filters: dict, sample_rate: int, freqs: np.ndarray, power: np.ndarray, title: str,
                    n_fft: int | None = None):
    """First-layer filters against the energy of the data. Left: the data's average power spectrum
    (`rawtag.learned.average_spectrum`: `freqs`, `power`) in dB re. its peak, filled grey, and each
    filter's power gain in dB re. its peak (log frequency); for a single filter, also what it passes (the
    spectrum times the gain) and its -3 dB band. Right: per octave band, the share of the data's energy
    there (grey) and the share the filter passes there (one bar per filter), whose sum over bands is the
    filter's `passed_share`. `filters` maps a label (a (length, stride) gets the paper's colour) to weights
    [1, 1, L] or [L]; chapter 03 passes one, chapter 04 the five settings.

    Chapter: 03_base_cnn
    """
    from .learned import filter_gain, passband

    freqs, power = np.asarray(freqs, np.float64), np.asarray(power, np.float64)
    n_fft = n_fft or 2 * (len(freqs) - 1)
    gains = {label: filter_gain(np.asarray(w).reshape(-1)[None], sample_rate, n_fft)[1][0]
             for label, w in filters.items()}
    for label, g in gains.items():
        if len(g) != len(freqs):
            raise ValueError(f"filter {label!r}: {len(g)} bins for a spectrum of {len(freqs)}: a filter longer "
                             f"than the spectrum's n_fft ({n_fft}) needs a longer one")
    fig, (left, right) = _figure(11, 3.6, ncols=2, gridspec_kw={"width_ratios": [1.4, 1]})
    f = freqs[1:]  # log axis: leave 0 Hz out
    db = 10 * np.log10(power[1:] / power[1:].max() + 1e-12)
    left.fill_between(f, -80, db, color="lightgray", label="data: average power spectrum")
    single = len(gains) == 1
    for i, (label, g) in enumerate(gains.items()):
        color = _color(label, i)
        left.plot(f, 10 * np.log10(g[1:] + 1e-12), color=color, linewidth=1.2,
                  label=f"filter gain{'' if single else ': ' + _legend(label)}")
        if single:
            passed = power[1:] * g[1:]
            left.plot(f, 10 * np.log10(passed / power[1:].max() + 1e-12), color="black", linewidth=0.8,
                      linestyle="--", label="what it passes (spectrum x gain)")
            lo, peak, hi = passband(freqs, g)
            left.axvspan(max(lo, f[0]), hi, color=color, alpha=0.15,
                         label=f"-3 dB band {lo:,.0f}-{hi:,.0f} Hz, peak {peak:,.0f} Hz")
    left.set_xscale("log")
    left.set_xlim(f[0], freqs[-1])
    left.set_ylim(-60, 3)
    _finish(left, "gain and spectrum", "frequency (Hz, log scale)", "dB re. peak")
    left.legend(fontsize=7, loc="lower left")
    bands = octave_bands(sample_rate)
    x = np.arange(len(bands))
    total = power.sum()
    inside = [(freqs >= a) & (freqs < b if k < len(bands) - 1 else freqs <= b) for k, (a, b) in enumerate(bands)]
    width = 0.8 / (len(gains) + 1)
    right.bar(x - 0.4 + width / 2, [power[m].sum() / total for m in inside], width, color="lightgray",
              label="share of the data's energy")
    for i, (label, g) in enumerate(gains.items()):
        right.bar(x - 0.4 + width * (i + 1.5), [(power[m] * g[m]).sum() / total for m in inside], width,
                  color=_color(label, i), label="share it passes" + ("" if single else f": {_legend(label)}"))
    right.set_xticks(x, [f"{a:,.0f}-{b:,.0f}" for a, b in bands], rotation=35, ha="right", fontsize=7)
    _finish(right, "energy per octave band", "band (Hz)", "share of the data's energy")
    fig.suptitle(title, fontsize=10)
    return fig


def filter_responses(weights: np.ndarray, sample_rate: int, title: str, n_fft: int = 512):
    """Magnitude responses (dB) of first-layer filters [filters, 1, taps], one row per filter sorted by peak
    frequency; a single filter is drawn by `filter_taps`. Shows what the front ends learned.

    Chapter: 07_beyond
    """
    w, freqs, response = _responses(weights, sample_rate, n_fft)
    if len(w) == 1:
        return filter_taps(weights, sample_rate, title, n_fft)
    order = np.argsort(response.argmax(axis=1), kind="stable")
    fig, ax = _figure(7, 3.2)
    im = ax.imshow(response[order], aspect="auto", origin="lower", cmap="viridis", vmin=-30, vmax=0,
                   extent=[freqs[0], freqs[-1], 0, len(w)])
    ax.set_ylabel("filter (sorted by peak)")
    fig.colorbar(im, ax=ax, label="dB re. each filter's peak")
    ax.set_xlabel("frequency (Hz)")
    ax.set_title(title, fontsize=10)
    return fig


def filter_taps(weights: np.ndarray, sample_rate: int, title: str, n_fft: int = 4096):
    """A first-layer filter bank [F, 1, L] or [F, L]. One filter (the base CNN's): its taps against sample
    index (ms on top) and its magnitude response in dB against Hz, the -3 dB band around the peak shaded.
    Several filters: `filter_responses`' image. Shows what the strided conv learned.

    Chapter: 03_base_cnn
    """
    w, freqs, response = _responses(weights, sample_rate, n_fft)
    if len(w) > 1:
        return filter_responses(weights, sample_rate, title, n_fft)
    taps, response = w[0], response[0]
    fig, (left, right) = _figure(10, 3.2, ncols=2)
    left.plot(np.arange(len(taps)), taps, color="tab:blue", marker="o" if len(taps) <= 64 else None,
              markersize=3, linewidth=1)
    left.set_xlabel("tap (sample index)")
    left.set_ylabel("weight")
    ms = left.secondary_xaxis("top", functions=(lambda i: i * 1000 / sample_rate, lambda t: t * sample_rate / 1000))
    ms.set_xlabel("ms", fontsize=8)
    left.grid(alpha=0.3)
    peak = lo = hi = int(response.argmax())
    while lo > 0 and response[lo - 1] >= -3:
        lo -= 1
    while hi < len(response) - 1 and response[hi + 1] >= -3:
        hi += 1
    right.plot(freqs, response, color="tab:blue", linewidth=1)
    right.axvspan(freqs[lo], freqs[hi], color="tab:orange", alpha=0.25,
                  label=f"-3 dB band: {freqs[lo]:.0f}-{freqs[hi]:.0f} Hz (peak {freqs[peak]:.0f} Hz)")
    right.axhline(-3, color="gray", linestyle=":", linewidth=0.8)
    right.set_ylim(max(response.min(), -60) - 2, 3)
    right.set_xlabel("frequency (Hz)")
    right.set_ylabel("gain (dB re. peak)")
    right.legend(fontsize=8, loc="lower right")
    right.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return fig


def max_pool_toy(x, size: int = 4, at: int | None = None):
    """A toy sequence and its max-pool of `size`, stride 1 (len(x) - size + 1 outputs), as rows of cells;
    the window of output `at` (default: the middle one) and its maximum highlighted.

    Chapter: 03_base_cnn
    """
    from matplotlib.patches import Polygon, Rectangle
    from numpy.lib.stride_tricks import sliding_window_view

    x = np.asarray(x, np.float64)
    out = sliding_window_view(x, size).max(axis=1)
    at = len(out) // 2 if at is None else at
    best = at + int(np.argmax(x[at:at + size]))
    fig, ax = _figure(0.55 * len(x) + 0.6, 2.6)
    shift = (size - 1) / 2  # each output sits under the middle of its window

    def row(values, y, offset, lit, caption):
        for i, v in enumerate(values):
            ax.add_patch(Rectangle((offset + i, y), 0.92, 0.8, facecolor="#9ecae1" if i in lit else "white",
                                   edgecolor="black" if i == lit[-1] else "gray",
                                   linewidth=2 if i == lit[-1] else 0.8))
            ax.text(offset + i + 0.46, y + 0.4, f"{v:.3g}", ha="center", va="center", fontsize=9,
                    fontweight="bold" if i == lit[-1] else "normal")
        ax.text(offset, y + 0.9, caption, fontsize=9, va="bottom")

    row(x, 2.0, 0, [i for i in range(at, at + size) if i != best] + [best], f"input x ({len(x)} values)")
    row(out, 0, shift, [at], f"max-pool {size}, stride 1 ({len(out)} values)")
    ax.add_patch(Polygon([(at, 2.0), (at + size - 0.08, 2.0), (shift + at + 0.92, 0.8), (shift + at, 0.8)],
                         facecolor="#9ecae1", alpha=0.35, edgecolor="none"))
    ax.set(xlim=(-0.2, len(x) + 0.2), ylim=(-0.2, 3.3), aspect="equal")
    ax.axis("off")
    ax.set_title(f"output[{at}] = max(x[{at}:{at + size}]) = {out[at]:.3g}", fontsize=10)
    return fig

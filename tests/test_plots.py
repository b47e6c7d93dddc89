"""Every figure function of rawtag.plots on tiny synthetic inputs, headless, with checks that can fail."""
from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgb
from matplotlib.image import AxesImage
from matplotlib.patches import FancyBboxPatch, Rectangle

from rawtag import plots

matplotlib.use("Agg")  # headless: pyplot picks its backend at the first figure, so switching here is in time


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def history(seed, epochs=6, per_epoch=10):
    rng = np.random.default_rng(seed)
    return {"epochs": [{"epoch": e, "valid_roc_auc": 0.6 + 0.02 * e + rng.normal(0, 0.01)}
                       for e in range(1, epochs + 1)],
            "iterations": [{"iteration": i, "epoch": (i - 1) // per_epoch + 1, "loss": 1 / i + rng.random() / 10}
                           for i in range(1, epochs * per_epoch + 1)]}


def legend_texts(fig):
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + fig.legends
    return " | ".join(t.get_text() for lg in legends for t in lg.get_texts())


def pair_auc(y, s):
    """ROC-AUC by counting positive-negative pairs (ties count half)."""
    pos, neg = s[y == 1], s[y == 0]
    return np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])


def test_colours_keep_the_papers_order_and_have_no_yellow():
    assert list(plots.PAPER_COLORS) == [(1024, 1024), (1024, 512), (512, 512), (512, 256), (256, 256)]
    for c in [*plots.PAPER_COLORS.values(), *plots.PALETTE]:
        r, g, b = to_rgb(c)
        assert not (r > 0.6 and g > 0.6 and b < 0.4), c  # yellow, gold, olive: unreadable on white


def test_epoch_curves_one_run_per_label():
    fig = plots.epoch_curves({(256, 256): history(0), "other": history(1)}, "t")
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and not any(isinstance(c, PolyCollection) for c in ax.collections)
    assert to_rgb(ax.lines[0].get_color()) == to_rgb(plots.PAPER_COLORS[(256, 256)])
    assert "length 256, stride 256" in legend_texts(fig)


def test_epoch_curves_seeds_draw_mean_and_range_band():
    seeds = [history(s) for s in range(3)]
    fig = plots.epoch_curves({"base": seeds}, "t", reference={"paper": 0.7827})
    ax = fig.axes[0]
    values = np.array([[e["valid_roc_auc"] for e in h["epochs"]] for h in seeds])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), values.mean(axis=0))
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 1
    ys = bands[0].get_paths()[0].vertices[:, 1]
    assert np.isclose(ys.max(), values.max()) and np.isclose(ys.min(), values.min())
    assert "mean of 3 seeds, band: range" in legend_texts(fig)
    assert ax.lines[-1].get_ydata()[0] == 0.7827 and "paper = 0.7827" in legend_texts(fig)
    no_band = plots.epoch_curves({"base": seeds}, "t", bands=False).axes[0]
    assert not any(isinstance(c, PolyCollection) for c in no_band.collections)


def test_loss_curves_smooth_in_epochs():
    h = history(0, epochs=4, per_epoch=10)
    ax = plots.loss_curves({"a": h}, "t", smooth=5).axes[0]
    raw, smooth = ax.lines  # the raw values faint behind, then the moving average
    assert raw.get_alpha() < 1
    assert np.isclose(smooth.get_xdata()[-1], 4.0) and np.isclose(smooth.get_xdata()[9], 1.0)
    loss = np.array([r["loss"] for r in h["iterations"]])
    assert np.isclose(smooth.get_ydata()[10], loss[8:13].mean())  # centred window of 5
    assert np.isclose(smooth.get_ydata()[0], loss[:3].mean())  # at the ends, the points that exist
    assert len(plots.loss_curves({"a": h}, "t", smooth=1).axes[0].lines) == 1
    seeds = plots.loss_curves({"a": [h, history(1, epochs=4)]}, "t").axes[0]
    assert any(isinstance(c, PolyCollection) for c in seeds.collections)


def test_roc_curve_worked_example():
    y = np.array([1, 0, 1, 1, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.1])
    fig = plots.roc_curve(y, s, "t", label="guitar")
    ax = fig.axes[0]
    assert f"guitar: ROC-AUC = {pair_auc(y, s):.3f}" in legend_texts(fig)
    curve = ax.lines[0]
    assert curve.get_marker() == "o" and len(curve.get_xdata()) == len(s) + 1  # every threshold, and (0, 0)
    assert list(ax.lines[1].get_xdata()) == [0, 1]  # the diagonal
    many = np.random.default_rng(0).random(60)
    assert plots.roc_curve(many > 0.5, many, "t").axes[0].lines[0].get_marker() in (None, "None", "")
    with pytest.raises(ValueError, match="both positive and negative"):
        plots.roc_curve(np.ones(4), s[:4], "t")


def test_pr_curve_average_precision_and_base_rate():
    y = np.array([1, 0, 1, 1, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.1])
    fig = plots.pr_curve(y, s, "t")
    ranked = y[np.argsort(-s)]
    ap = np.mean([ranked[:k + 1].mean() for k in np.flatnonzero(ranked)])  # precision at each hit
    assert f"= {ap:.3f}" in legend_texts(fig)
    assert "base rate 0.500" in legend_texts(fig)
    assert fig.axes[0].lines[-1].get_ydata()[0] == 0.5


def test_per_tag_auc_greys_tags_with_few_positives():
    per_tag = {"a": 0.9, "b": 0.7, "c": 0.6, "d": float("nan"), "e": 0.55}
    positives = {"a": 100, "b": 3, "c": 4, "d": 0, "e": 5}
    fig = plots.per_tag_auc(per_tag, "t", positives=positives, min_positives=5)
    bars = fig.axes[0].patches
    assert len(bars) == 4  # the NaN tag is left out
    grey = [b for b in bars if to_rgb(b.get_facecolor()) == to_rgb("lightgray")]
    assert len(grey) == 2 == sum(positives[t] < 5 for t, v in per_tag.items() if not np.isnan(v))
    assert [b.get_height() for b in bars] == [0.9, 0.7, 0.6, 0.55]
    assert "fewer than 5 positives: unreliable" in legend_texts(fig)
    assert {t.get_text() for t in fig.axes[0].texts} == {"100", "3", "4", "5"}
    plain = plots.per_tag_auc(per_tag, "t")
    assert not plain.axes[0].texts and "unreliable" not in legend_texts(plain)


def test_intervals_rows_in_order_with_reference():
    values = {"base": (0.78, 0.76, 0.80), "improved": (0.85, 0.84, 0.87), "one seed": (0.8, np.nan, np.nan)}
    fig = plots.intervals(values, "t", "ROC-AUC", reference=0.5, reference_label="chance")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0].startswith("base: 0.780 [0.760, 0.800]") and labels[2].endswith("(no interval)")
    points = ax.lines[0]
    assert list(points.get_xdata()) == [0.78, 0.85, 0.8]
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # first name on top
    assert ax.lines[-1].get_xdata()[0] == 0.5 and "chance" in legend_texts(fig)


def test_architecture_draws_one_box_per_stage():
    import torch

    from rawtag.models import build_model

    for name in ("base", "improved"):
        model = build_model(name, length=64, stride=32, subclip_samples=2000, n_tags=5)
        with torch.no_grad():
            stages = [(n, list(out.shape)) for n, _, out in model.eval().stages(torch.zeros(1, 10, 1, 2000))]
        model.train()
        fig = plots.architecture(model, name, input_shape=(1, 10, 1, 2000))
        ax = fig.axes[0]
        boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
        assert len(boxes) == len(stages)
        texts = " | ".join(t.get_text() for t in ax.texts)
        for stage, shape in stages:
            assert f"{stage}\n{shape}" in texts
        assert model.training  # left as it was found
    kinds = legend_texts(fig)
    assert "conv + max-pool" in kinds and "dense" in kinds and "dropout" in kinds


def test_spectrograms_share_a_scale_and_find_the_tone():
    sr = 8000
    t = np.arange(sr) / sr
    panels = {"1 kHz": np.sin(2 * np.pi * 1000 * t), "quiet noise": np.random.default_rng(0).normal(0, 0.01, sr),
              "short": np.ones(100)}
    fig = plots.spectrograms(panels, sr, "t", n_mels=32, n_fft=256, hop=128)
    images = [im for ax in fig.axes for im in ax.images]
    assert len(images) == 3 and len({im.get_clim() for im in images}) == 1
    import librosa

    centres = librosa.mel_frequencies(34, fmax=sr / 2)[1:-1]
    band = images[0].get_array().mean(axis=1).argmax()
    assert 850 < centres[band] < 1150


def test_filter_taps_one_filter_band_and_many_filters():
    sr = 12000
    taps = np.hanning(128) * np.sin(2 * np.pi * 1500 * np.arange(128) / sr)
    fig = plots.filter_taps(taps[None, None], sr, "t")
    assert len(fig.axes) == 2
    band = [p for p in fig.axes[1].patches if isinstance(p, Rectangle)]
    assert len(band) == 1
    low, high = band[0].get_x(), band[0].get_x() + band[0].get_width()
    assert low < 1500 < high and high - low < 500
    assert len(plots.filter_responses(taps[None, None], sr, "t").axes) == 2  # the same figure
    bank = np.random.default_rng(0).normal(size=(8, 1, 32))
    fig = plots.filter_taps(bank, sr, "t")
    images = [a for a in fig.axes[0].get_children() if isinstance(a, AxesImage)]
    assert len(images) == 1 and images[0].get_array().shape[0] == 8


def test_max_pool_toy():
    x = [1, 3, 2, 0, 5, 1, 1, 4, 2, 6, 0, 2]
    fig = plots.max_pool_toy(x, size=4)
    ax = fig.axes[0]
    out = [max(x[i:i + 4]) for i in range(len(x) - 3)]
    cells = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(cells) == len(x) + len(out) == 21
    values = [t.get_text() for t in ax.texts if not t.get_text().startswith(("input", "max-pool"))]
    assert values == [str(v) for v in x + out]
    lit = [p for p in cells if to_rgb(p.get_facecolor()) != (1.0, 1.0, 1.0)]
    assert len(lit) == 4 + 1  # the window and its output
    assert f"= {out[4]}" in ax.get_title()

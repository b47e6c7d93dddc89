"""The exercises' solutions, each checked against an independent computation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rawtag import exercises
from rawtag.data import normalize
from rawtag.models import build_model
from rawtag.train import TrainConfig


def test_cooccurring_pairs_and_frequency_ratio():
    tags = ["female", "woman", "piano"]
    labels = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 1]])
    pairs = exercises.cooccurring_pairs(labels, tags, threshold=0.5)
    assert ("woman", "female", 1.0) in pairs  # every woman clip is female
    assert any(a == "female" and b == "woman" and p == pytest.approx(2 / 3) for a, b, p in pairs)
    assert ("piano", "woman", 0.5) in pairs  # 1 of 2: the threshold is inclusive
    assert not any(a == "piano" for a, _, _ in exercises.cooccurring_pairs(labels, tags, threshold=0.6))
    half = np.array([[1, 0, 0], [0, 0, 0], [1, 1, 1], [0, 0, 1]])
    ratio = exercises.tag_frequency_ratio(labels, half, tags)
    assert ratio == pytest.approx({"female": 2 / 3, "woman": 0.5, "piano": 1.0})


def test_minmax_by_hand_matches_clip_mode():
    clip = np.array([-300, 0, 1200, 50], np.int16)
    stats = np.array([[clip.min(), clip.max()]])
    scale, offset = normalize.affine("clip", stats, np.array([0]))
    np.testing.assert_allclose(exercises.minmax_by_hand(clip), normalize.apply(clip, scale[0], offset[0]), atol=1e-6)
    assert exercises.minmax_by_hand(clip).min() == -1 and exercises.minmax_by_hand(clip).max() == 1


def test_seed_spread_trains_each_seed():
    class FakeWorkspace:
        def __init__(self):
            self.seeds = []

        def train(self, model, seed, progress, **settings):
            self.seeds.append(seed)
            return None, {"valid": {"roc_auc": 0.6 + 0.01 * seed}}

    ws = FakeWorkspace()
    mean, std, aucs = exercises.seed_spread(ws, seeds=(0, 1, 2))
    assert ws.seeds == [0, 1, 2] and aucs == [0.6, 0.61, 0.62]
    assert mean == pytest.approx(0.61) and std == pytest.approx(0.01)


@pytest.mark.parametrize("length,stride", [(1024, 1024), (1024, 512), (512, 512), (512, 256), (256, 256)])
def test_frames_and_parameters_by_hand_match_the_model(length, stride):
    model = build_model("base", length=length, stride=stride)
    with torch.no_grad():
        shapes = [out.shape[-1] for name, _, out in model.stages(torch.zeros(1, 10, 1, 34950))
                  if name.startswith(("strided", "conv"))]
    assert exercises.frames_after_each_stage(length, stride) == shapes
    by_hand = exercises.base_parameters(length)
    assert sum(by_hand.values()) == sum(p.numel() for p in model.parameters())
    assert by_hand["strided conv"] == sum(p.numel() for p in model.frames.parameters())


def test_rank_agreement():
    paper = {(1, 1): 0.1, (2, 2): 0.2, (3, 3): 0.3}
    assert exercises.rank_agreement({(1, 1): 5, (2, 2): 6, (3, 3): 7}, paper) == pytest.approx(1.0)
    assert exercises.rank_agreement({(1, 1): 7, (2, 2): 6, (3, 3): 5, (9, 9): 0}, paper) == pytest.approx(-1.0)


def test_clip_level_exercises():
    labels = np.array([[1, 0, 0], [1, 1, 1], [0, 1, 0]])
    logits = np.array([[3.0, -3, -3], [1, -1, 0.5], [-2, 2, -2]])
    np.testing.assert_allclose(exercises.precision_at_k(labels, logits, k=1), [1, 1, 1])
    np.testing.assert_allclose(exercises.precision_at_k(labels, logits, k=2), [0.5, 1, 0.5])
    from rawtag.metrics import per_clip_bce

    expected = np.corrcoef(per_clip_bce(labels, logits), labels.sum(axis=1))[0, 1]
    assert exercises.loss_tag_count_correlation(labels, logits) == pytest.approx(expected)


def _improved_parameters(length=256, first=128, widths=(128, 512, 512), batch_norm=True, n_tags=50):
    """The improved CNN's parameter count, by hand: conv weights + biases (+ batch norm's scale and shift)."""
    bn = 2 if batch_norm else 0
    total, cin = first * length + first + bn * first, first
    for width in widths:
        total += cin * width * 8 + width + bn * width
        cin = width
    return total + cin * 100 + 100 + 100 * n_tags + n_tags


def test_leave_one_out_settings_each_remove_one_change():
    settings = exercises.leave_one_out_settings()
    removed = {"without depth": dict(widths=(128, 512)), "without width": dict(first=1, widths=(32, 32, 32)),
               "without batch norm": dict(batch_norm=False), "without dropout": {}, "without schedule": {}}
    assert set(settings) == set(removed)
    assert _improved_parameters() == sum(p.numel() for p in build_model("improved").parameters()) == 2_845_470
    for name, setting in settings.items():
        params = {k: v for k, v in setting.items() if k not in ("lr", "lr_factor", "lr_patience")}
        model = build_model("improved", **params).eval()
        # the architecture, by hand: only the removed change differs from the full improved CNN
        assert sum(p.numel() for p in model.parameters()) == _improved_parameters(**removed[name]), name
        assert len(model.pairs) == (2 if name == "without depth" else 3), name
        assert model.frames[0].out_channels == (1 if name == "without width" else 128), name
        has_bn = any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())
        assert has_bn == (name != "without batch norm"), name
        assert (model.dropout is None) if name == "without dropout" else (model.dropout.p == 0.5), name
        with torch.no_grad():
            assert model(torch.zeros(1, 1, 1, 34950)).shape == (1, 50), name
        # only "without schedule" changes the optimizer: `fit` runs no plateau scheduler for a falsy factor;
        # the others keep the paper's protocol (Adam at 0.01, divided by 5 after a plateau of 3 epochs)
        cfg = TrainConfig(model="improved", **{k: v for k, v in setting.items() if k not in params}).resolved()
        if name == "without schedule":
            assert not cfg.lr_factor, name
        else:
            assert (cfg.lr, cfg.lr_factor, cfg.lr_patience) == (1e-2, 0.2, 3), name


def test_lr_drops():
    history = {"epochs": [{"epoch": e, "lr": lr} for e, lr in enumerate([0.01, 0.01, 0.002, 0.002, 0.0004], 1)]}
    assert exercises.lr_drops(history) == [3, 5]


def test_relative_cost_follows_frames():
    cost = exercises.relative_cost([(1024, 1024), (512, 256), (256, 256)])
    assert cost[(1024, 1024)] == 1.0
    assert cost[(256, 256)] == pytest.approx(136 / 34)  # 136 frames against 34
    assert cost[(512, 256)] == pytest.approx(135 / 34)


def test_receptive_field_and_filter_peaks():
    sample_level = [(3, 3)] + [(3, 1), (3, 3)] * 9
    assert exercises.receptive_field(sample_level) == (3 ** 10 + 2 * sum(3 ** k for k in range(1, 10)), 3 ** 10)
    assert exercises.receptive_field([(256, 256), (8, 1), (4, 1), (8, 1), (4, 1)]) == (256 * 21, 256)
    t = np.arange(64)
    weights = np.stack([np.sin(2 * np.pi * f * t / 12000) * np.hanning(64) for f in (500, 3000)])[:, None]
    peaks = exercises.filter_peak_frequencies(weights, 12000)
    assert abs(peaks[0] - 500) < 60 and abs(peaks[1] - 3000) < 60


def test_confident_mistake_losses():
    losses = exercises.confident_mistake_losses(40.0)
    assert losses["BCEWithLogitsLoss"] == pytest.approx(40.0 + np.log1p(np.exp(-40.0)))
    assert losses["Sigmoid + BCELoss"] == pytest.approx(100.0)  # sigmoid(40) == 1 in float32; log clamped
    small = exercises.confident_mistake_losses(2.0)
    assert small["Sigmoid + BCELoss"] == pytest.approx(small["BCEWithLogitsLoss"], rel=1e-5)


def test_perfect_rank_p_value_by_enumeration():
    from itertools import permutations

    from scipy.stats import spearmanr

    perfect = sum(abs(spearmanr(range(5), order)[0]) > 0.999 for order in permutations(range(5)))
    assert exercises.perfect_rank_p_value(5) == pytest.approx(perfect / 120)


def test_level_tags_auc_reads_two_runs():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = (rng.random((40, 3)) < 0.5).astype(np.uint8)

    class FakeRun:
        def __init__(self, logits):
            self.config = {"tags": ["loud", "quiet", "piano"]}
            self._logits = logits

        def labels(self):
            return labels

        def logits(self):
            return self._logits

    a, b = FakeRun(labels + rng.standard_normal((40, 3))), FakeRun(rng.standard_normal((40, 3)))
    out = exercises.level_tags_auc(a, b)
    assert set(out) == {"loud", "quiet", "macro"}
    assert out["loud"][0] == pytest.approx(roc_auc_score(labels[:, 0], a.logits()[:, 0]), abs=1e-4)
    assert out["quiet"][1] == pytest.approx(roc_auc_score(labels[:, 1], b.logits()[:, 1]), abs=1e-4)
    macro_b = np.mean([roc_auc_score(labels[:, j], b.logits()[:, j]) for j in range(3)])  # over every tag
    assert out["macro"][1] == pytest.approx(macro_b, abs=1e-4)

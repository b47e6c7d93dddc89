"""AUC code against scikit-learn, degenerate tags, per-clip loss."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from rawtag.metrics import per_clip_bce, tag_scores


def test_agrees_with_sklearn_on_random_data():
    rng = np.random.default_rng(0)
    y = (rng.random((200, 12)) < 0.3).astype(int)
    s = rng.standard_normal((200, 12)) + y * rng.random(12)
    scores = tag_scores(y, s)
    assert scores.roc_auc == pytest.approx(roc_auc_score(y, s, average="macro"), abs=1e-12)
    assert scores.pr_auc == pytest.approx(average_precision_score(y, s, average="macro"), abs=1e-12)
    assert scores.per_tag_roc["3"] == pytest.approx(roc_auc_score(y[:, 3], s[:, 3]))


def test_single_class_tags_are_excluded_and_counted():
    rng = np.random.default_rng(1)
    y = (rng.random((50, 4)) < 0.5).astype(int)
    y[:, 1] = 0
    y[:, 3] = 1
    s = rng.random((50, 4))
    scores = tag_scores(y, s, ["a", "b", "c", "d"])
    assert scores.excluded == ["b", "d"] and np.isnan(scores.per_tag_roc["b"])
    assert scores.roc_auc == pytest.approx(np.mean([roc_auc_score(y[:, j], s[:, j]) for j in (0, 2)]))


def test_shape_mismatch():
    with pytest.raises(ValueError, match="must both be"):
        tag_scores(np.zeros((3, 2)), np.zeros((3, 3)))


def test_per_clip_bce_matches_torch_and_is_stable():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((6, 5)) * 50
    y = (rng.random((6, 5)) < 0.5).astype(float)
    expect = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(z), torch.tensor(y), reduction="none").mean(dim=1).numpy()
    got = per_clip_bce(y, z)
    assert np.allclose(got, expect) and np.isfinite(got).all()


def test_rank_auc_matches_sklearn_with_ties_and_single_class():
    rng = np.random.default_rng(3)
    y = (rng.random((40, 6)) < 0.4).astype(int)
    y[:, 5] = 0
    s = np.round(rng.standard_normal((40, 6)), 1)  # many ties
    from rawtag.metrics import rank_auc

    got = rank_auc(y, s)
    assert np.isnan(got[5])
    assert np.allclose(got[:5], [roc_auc_score(y[:, j], s[:, j]) for j in range(5)])


def test_bootstrap_interval_covers_and_narrows_with_clips():
    from rawtag.metrics import bootstrap

    rng = np.random.default_rng(4)

    def data(n):
        y = (rng.random((n, 8)) < 0.3).astype(int)
        return y, rng.standard_normal((n, 8)) + 0.8 * y

    y, s = data(100)
    small = bootstrap(y, s, resamples=300)
    assert small.low < small.value < small.high
    assert small.value == pytest.approx(roc_auc_score(y, s, average="macro"))
    y2, s2 = data(1600)
    large = bootstrap(y2, s2, resamples=300)
    assert (large.high - large.low) < 0.5 * (small.high - small.low)  # ~1/sqrt(16) as wide
    assert large.excludes(0.5) and not large.excludes(large.value)


def test_paired_difference_of_a_model_with_itself_is_zero_and_of_noise_includes_zero():
    from rawtag.metrics import bootstrap

    rng = np.random.default_rng(5)
    y = (rng.random((150, 5)) < 0.3).astype(int)
    s = rng.standard_normal((150, 5)) + y
    same = bootstrap(y, s, s, resamples=200)
    assert same.value == 0 and same.low == 0 and same.high == 0
    better = bootstrap(y, s + 3 * y, s, resamples=200)
    assert better.low > 0
    twin = bootstrap(y, s + 0.01 * rng.standard_normal(s.shape), s, resamples=200)
    assert twin.low <= 0 <= twin.high


def test_seed_interval():
    from rawtag.metrics import seed_interval

    iv = seed_interval([0.70, 0.72, 0.74])
    assert iv.value == pytest.approx(0.72) and iv.low < 0.70 and iv.high > 0.74  # t(2) is wide
    assert np.isnan(seed_interval([0.7]).low)


def test_paired_difference_is_a_t_interval_over_seeds():
    from scipy.stats import t

    from rawtag.metrics import paired_difference

    a, b = np.array([0.80, 0.82, 0.79, 0.81]), np.array([0.78, 0.81, 0.76, 0.80])
    d = a - b
    est = paired_difference(a, b)
    half = t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert est.value == pytest.approx(d.mean()) and est.df == 3
    assert (est.low, est.high) == pytest.approx((d.mean() - half, d.mean() + half))
    # pairing: a shared seed effect cancels, so the interval is narrower than the unpaired spread suggests
    shared = np.array([0.0, 0.05, -0.05, 0.02])
    assert paired_difference(a + shared, b + shared).se == pytest.approx(est.se)
    with pytest.raises(ValueError, match="paired"):
        paired_difference(a, b[:3])


def test_block_trend_recovers_a_slope_and_ignores_block_offsets():
    from rawtag.metrics import block_trend

    x = np.array([10.0, 9, 9, 8, 8])
    offsets = np.array([[0.0], [0.1], [-0.2]])  # each seed its own level
    exact = block_trend(0.5 - 0.01 * x + offsets, x)
    assert exact.value == pytest.approx(-0.01) and exact.se == pytest.approx(0, abs=1e-12) and exact.df == 11
    rng = np.random.default_rng(0)
    noisy = [block_trend(0.5 - 0.01 * x + offsets + 0.01 * rng.standard_normal((3, 5)), x) for _ in range(400)]
    covered = np.mean([e.low <= -0.01 <= e.high for e in noisy])
    assert 0.9 < covered < 0.99  # a 95 % interval covers the true slope about 95 % of the time
    with pytest.raises(ValueError, match="two different"):
        block_trend(np.zeros((2, 3)), [1, 1, 1])


def test_power_matches_published_values_and_is_alpha_at_zero():
    from rawtag.metrics import detectable, power_t, seeds_needed

    assert power_t(0.0, 1.0, 9) == pytest.approx(0.05, abs=1e-5)
    assert power_t(0.3, 1 / np.sqrt(90), 89) == pytest.approx(0.8038, abs=5e-4)  # large df: the fast branch
    # one-sample / paired t, d = 1, n = 10, two-sided 5 %: power 0.803 (G*Power); d = 0.5 needs n = 34
    assert power_t(1.0, 1 / np.sqrt(10), 9) == pytest.approx(0.8031, abs=5e-4)
    assert seeds_needed(0.5, 1.0) == 34 and seeds_needed(1.0, 1.0) == 10
    assert seeds_needed(-0.5, 1.0) == 34
    mdd = detectable(1 / np.sqrt(10), 9)
    assert power_t(mdd, 1 / np.sqrt(10), 9) == pytest.approx(0.8) and 0.95 < mdd < 1.0
    assert np.isnan(detectable(float("nan"), 2))

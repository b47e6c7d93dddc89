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
    with pytest.warns(UserWarning, match="2 tag\\(s\\) have a single class"):
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

"""Normalization (Eq. 1) and batches from the memmap."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rawtag.data import normalize
from rawtag.data.batches import Batches, subset
from rawtag.data.prepare import PreparedSet


def test_eq1_fitted_on_train_only(synth_prepared):
    data = PreparedSet(synth_prepared)
    train = data.rows("train")
    lo = min(int(data.clips[r].min()) for r in train)
    hi = max(int(data.clips[r].max()) for r in train)
    assert normalize.fit_minmax(data.rowstats, train) == (lo, hi)
    scale, offset = normalize.minmax_affine(lo, hi)
    x = data.clips[train[0]]
    expect = 2 * (x.astype(np.float64) - lo) / (hi - lo) - 1  # the paper's Eq. (1), written out
    assert np.allclose(normalize.apply(x, scale, offset), expect, atol=1e-5)
    batch = next(iter(Batches(data, "train", batch_size=len(train))))
    assert batch.x.min() >= -1 - 1e-5 and batch.x.max() <= 1 + 1e-5
    assert abs(float(batch.x.min()) + 1) < 1e-4 or abs(float(batch.x.max()) - 1) < 1e-4
    # the valid and test clips use the training range, so they may leave [-1, 1] a little; never refitted
    s, o = normalize.affine("dataset", data.rowstats, train)
    assert np.all(s == scale) and np.all(o == offset)


def test_per_clip_variant_fills_the_range(synth_prepared):
    data = PreparedSet(synth_prepared)
    batch = next(iter(Batches(data, "train", batch_size=4, normalization="clip")))
    flat = batch.x.reshape(len(batch.rows), -1)
    assert torch.allclose(flat.min(dim=1).values, torch.full((len(batch.rows),), -1.0), atol=1e-4)
    assert torch.allclose(flat.max(dim=1).values, torch.ones(len(batch.rows)), atol=1e-4)
    with pytest.raises(ValueError, match="unknown normalization"):
        normalize.affine("zscore", data.rowstats, data.rows("train"))


def test_batch_shapes_labels_and_seeded_shuffle(synth_prepared):
    data = PreparedSet(synth_prepared)
    b = Batches(data, "train", batch_size=3, shuffle=True, seed=7)
    batches = list(b)
    assert len(batches) == len(b) == -(-len(data.rows("train")) // 3)
    first = batches[0]
    assert first.x.shape == (3, 10, 1, 34950) and first.x.dtype == torch.float32
    assert first.y.shape == (3, len(data.tags)) and torch.equal(first.y, torch.from_numpy(
        data.labels[first.rows].astype(np.float32)))
    epoch0 = np.concatenate([bt.rows for bt in batches])
    assert sorted(epoch0) == sorted(data.rows("train"))
    again = np.concatenate([bt.rows for bt in Batches(data, "train", batch_size=3, shuffle=True, seed=7)])
    assert np.array_equal(epoch0, again)
    b.set_epoch(1)
    assert not np.array_equal(epoch0, np.concatenate([bt.rows for bt in b]))


def test_in_memory_and_memmap_agree_and_max_clips(synth_prepared):
    data = PreparedSet(synth_prepared)
    a = list(Batches(data, "train", batch_size=4, shuffle=True, seed=1, max_clips=5, prefetch=0))
    b = list(Batches(data, "train", batch_size=4, shuffle=True, seed=1, max_clips=5, in_memory=True))
    assert sum(len(x.rows) for x in a) == 5
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.rows, y.rows) and torch.equal(x.x, y.x)
    rows = np.arange(100)
    assert np.array_equal(subset(rows, 10), subset(rows, 10)) and len(subset(rows, 10)) == 10
    with pytest.raises(ValueError):
        subset(rows, 0)

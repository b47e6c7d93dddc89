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


def _expected(data, rows, normalization="dataset", starts=None, crop=None):
    """Eq. (1) applied to the memmap rows, written out without Batches."""
    scale, offset = normalize.affine(normalization, data.rowstats, data.rows("train"))
    out = []
    for k, r in enumerate(rows):
        clip = np.asarray(data.clips[r] if starts is None else data.clips[r, starts[k]:starts[k] + crop])
        out.append(normalize.apply(clip, scale[r], offset[r]))
    return np.stack(out)


@pytest.mark.parametrize("crop", [None, 5000])
def test_buffers_threads_and_recycling_give_the_same_batches(synth_prepared, crop):
    data = PreparedSet(synth_prepared)
    settings = dict(batch_size=3, shuffle=True, seed=2, crop=crop, layout="waveform" if crop else "subclips")
    plain = list(Batches(data, "train", prefetch=0, **settings))
    threaded = list(Batches(data, "train", prefetch=2, **settings))
    recycling = Batches(data, "train", prefetch=0, recycle=True, **settings)
    starts = recycling.crop_starts(len(recycling.rows))
    pointers, recycled, at = set(), [], 0
    for batch in recycling:
        pointers.add(batch.x.data_ptr())
        recycled.append(batch.x.clone())  # the next batch overwrites it
        expect = _expected(data, batch.rows, starts=None if crop is None else starts[at:at + len(batch.rows)],
                           crop=crop)
        assert np.array_equal(batch.x.reshape(len(batch.rows), -1).numpy(), expect)
        at += len(batch.rows)
    assert len(pointers) == 1 and len(recycled) == len(plain) > 2  # one float buffer for every batch
    for a, b, c in zip(plain, threaded, recycled, strict=True):
        assert np.array_equal(a.rows, b.rows) and torch.equal(a.x, b.x) and torch.equal(a.x, c)
    assert len({b.x.data_ptr() for b in plain}) == len(plain)  # without recycle, each batch is its own tensor


def test_the_kernel_is_asked_for_the_next_batch(synth_prepared, monkeypatch):
    data = PreparedSet(synth_prepared)
    asked = []
    monkeypatch.setattr(data, "will_need", lambda rows: asked.append(np.array(rows)))
    batches = Batches(data, "train", batch_size=4, shuffle=True, prefetch=0)
    seen = [b.rows for b in batches]
    assert len(asked) == len(seen) - 1 and all(np.array_equal(a, b) for a, b in zip(asked, seen[1:], strict=True))
    monkeypatch.undo()
    data.will_need(seen[0])  # the real call returns at once on any OS (a no-op without posix_fadvise)

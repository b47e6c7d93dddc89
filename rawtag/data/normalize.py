"""Normalization, the paper's Eq. (1): f(x) = 2 (x - x_min) / (x_max - x_min) - 1.

Taught in chapter 02 (normalization). Both variants are affine maps x -> scale * x + offset on the int16
samples, computed from each clip's stored min and max (`rowstats.npy`), so no pass over the audio is
needed and the map runs on the device after the int16 batch arrives.

- `dataset`: one (x_min, x_max) over the TRAINING split only, applied to every split (the paper; fitting
  on validation or test would leak their statistics into training);
- `clip`: each clip mapped by its own min and max (every clip fills [-1, 1]; level is lost);
- `none`: int16 / 32768, the plain float conversion;
- `raw`: the int16 values as they are (up to +-32,767): no normalization at all, the paper's "before".

Chapter: 02_normalization
"""
from __future__ import annotations

import numpy as np

MODES = ("dataset", "clip", "none", "raw")


def fit_minmax(rowstats: np.ndarray, rows: np.ndarray) -> tuple[int, int]:
    """(x_min, x_max) over the clips `rows` (typically the training split).

    Chapter: 02_normalization
    """
    if len(rows) == 0:
        raise ValueError("cannot fit normalization on an empty split")
    return int(rowstats[rows, 0].min()), int(rowstats[rows, 1].max())


def minmax_affine(lo, hi):
    """Scale and offset of Eq. (1) for the range [lo, hi] (arrays or scalars); a flat range maps to 0.

    Chapter: 02_normalization
    """
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    span = np.where(hi > lo, hi - lo, 1.0)
    scale = 2.0 / span
    offset = np.where(hi > lo, -2.0 * lo / span - 1.0, -lo * scale)
    return scale.astype(np.float32), offset.astype(np.float32)


def affine(mode: str, rowstats: np.ndarray, train_rows: np.ndarray):
    """Per-row (scale, offset) arrays [N] for `mode`, fitted on `train_rows` where the mode needs it.

    Chapter: 02_normalization
    """
    n = len(rowstats)
    if mode == "dataset":
        scale, offset = minmax_affine(*fit_minmax(rowstats, train_rows))
        return np.full(n, scale, np.float32), np.full(n, offset, np.float32)
    if mode == "clip":
        return minmax_affine(rowstats[:, 0], rowstats[:, 1])
    if mode == "none":
        return np.full(n, 1 / 32768, np.float32), np.zeros(n, np.float32)
    if mode == "raw":
        return np.ones(n, np.float32), np.zeros(n, np.float32)
    raise ValueError(f"unknown normalization {mode!r}; choose one of {', '.join(MODES)}")


def apply(x: np.ndarray, scale, offset) -> np.ndarray:
    """Eq. (1) on int16 samples as float32 (numpy; the training loop does the same in torch).

    Chapter: 02_normalization
    """
    return x.astype(np.float32) * np.float32(scale) + np.float32(offset)

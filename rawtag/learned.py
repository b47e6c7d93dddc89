"""What a trained network learned, measured: its first-layer filter against the spectrum of the data, what
the filter lets through, each layer's output for one clip, and whether training overfitted.

Taught in chapter 03 (base CNN) and used by chapter 05 (qualitative results). Every function takes what a
run and a prepared set hold (weights, int16 clips, labels, a history) and returns plain arrays or numbers;
the figures are in `rawtag.plots`. Nothing here trains: a few clips and one forward pass, seconds on a CPU.

- `filter_gain`, `passband`: a first-layer filter's power gain |W(f)|^2 re. its peak, and the band
  around the peak within 3 dB of it;
- `clip_spectra`, `average_spectrum`: the power spectrum of clips (Welch's method: the mean |X(f)|^2 of
  Hann-windowed frames), the energy a filter can pick from;
- `passed_share`, `band_share`, `tag_shares`: the share of a clip's (or a tag's clips') energy that a
  filter passes, or that lies in a band;
- `filtered_audio`: a clip through the filter, as audio one can listen to;
- `feature_maps`: the output of every stage of a `FrameCNN` for one clip;
- `train_valid_gap`: the per-epoch training and validation losses set side by side (the overfitting test);
- `rank_correlation`: Spearman's rho with a bootstrap interval over the points (tags).

Chapter: 03_base_cnn
"""
from __future__ import annotations

import numpy as np

N_FFT = 4096  # 2.9 Hz bins at 12 kHz: fine enough to see a filter of 1,024 taps (12 Hz wide)


def filter_gain(weights, sample_rate: int, n_fft: int = N_FFT) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies in Hz, power gain |W(f)|^2 re. each filter's peak) of first-layer filters [F, 1, L] or
    [F, L] (or one filter [L]); the gain is [F, n_fft // 2 + 1] (zero-padded to n_fft, or to L if longer),
    1 at each filter's peak.

    Chapter: 03_base_cnn
    """
    w = np.asarray(weights, np.float64)
    w = w.reshape(-1, w.shape[-1])
    n = max(n_fft, w.shape[1])
    power = np.abs(np.fft.rfft(w, n=n, axis=1)) ** 2
    return np.fft.rfftfreq(n, 1 / sample_rate), power / np.maximum(power.max(axis=1, keepdims=True), 1e-300)


def passband(freqs: np.ndarray, gain: np.ndarray, drop_db: float = 3.0) -> tuple[float, float, float]:
    """(low edge, peak, high edge) in Hz of the contiguous band around the peak of one filter's power gain
    (`filter_gain`'s row) where the gain stays within `drop_db` dB of the peak.

    Chapter: 03_base_cnn
    """
    gain = np.asarray(gain, np.float64).ravel()
    floor = gain.max() * 10 ** (-drop_db / 10)
    peak = lo = hi = int(gain.argmax())
    while lo > 0 and gain[lo - 1] >= floor:
        lo -= 1
    while hi < len(gain) - 1 and gain[hi + 1] >= floor:
        hi += 1
    return float(freqs[lo]), float(freqs[peak]), float(freqs[hi])


def clip_spectra(clips, n_fft: int = N_FFT, frames: int | None = 32, rows=None) -> np.ndarray:
    """The power spectrum [clips, n_fft // 2 + 1] of each clip (rows of int16 or float samples): the mean
    |X(f)|^2 over Hann-windowed frames of n_fft samples (Welch's method, no overlap), the frame's weighted
    mean removed first (a constant offset is not sound). `frames` spreads that many frames evenly over each
    clip (None: every frame); 32 frames of 4,096 samples read a third of a 29 s clip at 12 kHz and estimate
    its spectrum well enough to compare bands. With `rows`, only those rows of `clips` (a prepared set's
    memmap) are read, one at a time and only the frames used, in the order given.

    Chapter: 03_base_cnn
    """
    if rows is None:
        x = np.asarray(clips)
        x = x.reshape(-1, x.shape[-1])
        rows = range(len(x))
    else:
        x, rows = clips, [int(r) for r in np.asarray(rows).ravel()]
    scale = 32768.0 if np.issubdtype(x.dtype, np.integer) else 1.0
    total = x.shape[-1] // n_fft
    if total < 1:
        raise ValueError(f"clips of {x.shape[-1]} samples are shorter than one frame of {n_fft}")
    starts = np.arange(total) * n_fft
    if frames is not None and frames < total:
        starts = starts[np.linspace(0, total - 1, frames).round().astype(int)]
    window = np.hanning(n_fft)
    out = np.empty((len(rows), n_fft // 2 + 1))
    for i, r in enumerate(rows):  # clip by clip, frame by frame: memory stays small however many clips
        row = x[r]
        chunk = np.stack([row[s:s + n_fft] for s in starts]).astype(np.float64) / scale
        chunk *= window
        chunk -= np.outer(chunk.sum(axis=1) / window.sum(), window)  # a constant offset is not music: no 0 Hz
        out[i] = (np.abs(np.fft.rfft(chunk, axis=1)) ** 2).mean(axis=0)
    return out


def average_spectrum(data, split: str = "train", clips: int | None = 32, n_fft: int = N_FFT,
                     frames: int | None = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies in Hz, mean power spectrum) of up to `clips` clips of `split` of a prepared set, drawn
    at random (seeded; None: all): the energy, per frequency, a first-layer filter can pick from.

    Chapter: 03_base_cnn
    """
    rows = data.rows(split)
    if clips is not None and clips < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, clips, replace=False))
    power = clip_spectra(data.clips, n_fft, frames, rows=rows)
    return np.fft.rfftfreq(n_fft, 1 / data.sample_rate), power.mean(axis=0)


def passed_share(power: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """The share of each spectrum's energy that a filter passes: sum_f P(f) g(f) / sum_f P(f), with g the
    power gain re. the filter's peak (`filter_gain`), so 1 means all the energy sits at the peak. `power`
    [..., bins] and `gain` [bins] on the same frequencies.

    Chapter: 03_base_cnn
    """
    power, gain = np.asarray(power, np.float64), np.asarray(gain, np.float64).ravel()
    if power.shape[-1] != len(gain):
        raise ValueError(f"the spectrum has {power.shape[-1]} bins and the gain {len(gain)}: use the same n_fft")
    return (power * gain).sum(axis=-1) / np.maximum(power.sum(axis=-1), 1e-300)


def band_share(freqs: np.ndarray, power: np.ndarray, low: float, high: float) -> np.ndarray:
    """The share of each spectrum's energy between `low` and `high` Hz (inclusive).

    Chapter: 03_base_cnn
    """
    power = np.asarray(power, np.float64)
    inside = (np.asarray(freqs) >= low) & (np.asarray(freqs) <= high)
    return power[..., inside].sum(axis=-1) / np.maximum(power.sum(axis=-1), 1e-300)


def tag_shares(labels: np.ndarray, shares: np.ndarray, tags: list | None = None) -> dict:
    """Per tag, the mean of `shares` (one value per clip, e.g. `passed_share`) over the clips that have the
    tag; a tag without a positive clip gets NaN. Keys are `tags` (default: column indices).

    Chapter: 05_qualitative
    """
    labels, shares = np.asarray(labels, bool), np.asarray(shares, np.float64)
    if len(labels) != len(shares):
        raise ValueError(f"{len(labels)} label rows for {len(shares)} clips")
    tags = list(range(labels.shape[1])) if tags is None else list(tags)
    return {t: float(shares[labels[:, j]].mean()) if labels[:, j].any() else float("nan")
            for j, t in enumerate(tags)}


def filtered_audio(weights, audio, level: str = "rms") -> np.ndarray:
    """`audio` (int16 or float samples) through one first-layer filter at stride 1: the layer's sum
    sum_k w[k] x[n + k] at every sample instead of every S-th, before the bias and the ReLU, so that it can
    be heard. The filter's scale is arbitrary, so the output is rescaled: `level="rms"` to the input's RMS
    (then down, if needed, to keep its peak below 1), `"peak"` to a peak of 0.9. Float32, as long as `audio`.

    Chapter: 03_base_cnn
    """
    w = np.asarray(weights, np.float64).ravel()
    x = np.asarray(audio)
    x = x.astype(np.float64) / (32768.0 if np.issubdtype(x.dtype, np.integer) else 1.0)
    n = len(x)
    size = 1 << int(np.ceil(np.log2(n + len(w))))
    y = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(w, size)), size)[:n]  # correlation, like Conv1d
    peak = np.abs(y).max()
    if peak == 0:
        return y.astype(np.float32)
    if level == "rms":
        y *= np.sqrt(np.mean(x ** 2) / max(np.mean(y ** 2), 1e-300))
        y *= min(1.0, 0.99 / np.abs(y).max())
    elif level == "peak":
        y *= 0.9 / peak
    else:
        raise ValueError(f"unknown level {level!r}; choose rms or peak")
    return y.astype(np.float32)


def feature_maps(model, x, subclip: int = 0) -> list[dict]:
    """Every stage of a `FrameCNN` (`model.stages`) for one clip `x` [1, 10, 1, N] (already normalized, as
    `rawtag.data.batches.Batches` hands it): one dict per stage with `name`, `shape` (the whole clip's
    output shape) and `values`, a float numpy array of sub-clip `subclip`'s part ([channels, time] before
    global pooling, [features] after it; the last stages, pooled over sub-clips, as they are). A stage
    that ends in a ReLU (the front end) also gets `before_relu`, its values before the ReLU cut the
    negative ones to zero (None elsewhere).

    Chapter: 03_base_cnn
    """
    import torch
    from torch import nn

    x = torch.as_tensor(x)
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"feature_maps takes one clip [1, 10, 1, N], got {list(x.shape)}")
    subclips = x.shape[1]
    out = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            def part(t):
                values = t.float().cpu().numpy()
                if values.shape[0] == subclips:  # [10, ...]: the sub-clips are the batch
                    return values[subclip]
                return values[0] if values.shape[0] == 1 else values  # [1, ...]: the clip

            before = x
            for name, module, y in model.stages(x):
                relu = isinstance(module, nn.Sequential) and isinstance(module[-1], nn.ReLU)
                out.append({"name": name, "shape": tuple(y.shape), "values": part(y),
                            "before_relu": part(module[:-1](before)) if relu else None})
                before = y
    finally:
        model.train(was_training)
    return out


def train_valid_gap(history: dict) -> dict:
    """The per-epoch losses of a run's history (`rawtag.train` writes {"epochs": [{"epoch", "train_loss",
    "valid_loss", "valid_roc_auc", ...}]}), read for overfitting: the last epoch's training and validation
    loss and their gap (validation minus training), the epoch of the lowest validation loss and how far the
    loss rose after it (0 if it is the last), and the epoch of the highest validation ROC-AUC and how far
    the AUC fell after it.

    Chapter: 03_base_cnn
    """
    epochs = history["epochs"]
    if not epochs:
        raise ValueError("the history holds no epoch")
    e = np.array([r["epoch"] for r in epochs])
    train = np.array([r["train_loss"] for r in epochs], np.float64)
    valid = np.array([r["valid_loss"] for r in epochs], np.float64)
    auc = np.array([r["valid_roc_auc"] for r in epochs], np.float64)
    lowest = int(np.nanargmin(valid))
    highest = int(np.nanargmax(auc)) if np.isfinite(auc).any() else len(auc) - 1
    return {"epochs": len(e), "train_loss": float(train[-1]), "valid_loss": float(valid[-1]),
            "gap": float(valid[-1] - train[-1]), "first_gap": float(valid[0] - train[0]),
            "min_valid_epoch": int(e[lowest]), "min_valid_loss": float(valid[lowest]),
            "valid_rise": float(valid[-1] - valid[lowest]), "best_auc_epoch": int(e[highest]),
            "auc_drop": float(auc[highest] - auc[-1]), "train_fell": float(train[0] - train[-1])}


def rank_correlation(x, y, boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """Spearman's rank correlation of paired values (NaN pairs dropped) and a bootstrap interval over the
    pairs (percentile, `level`): (rho, low, high). With few pairs the interval is wide, as it should be;
    NaN throughout below 3 pairs.

    Chapter: 05_qualitative
    """
    from scipy.stats import rankdata

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3:
        return float("nan"), float("nan"), float("nan")

    def rho(a, b):
        a, b = rankdata(a), rankdata(b)
        if a.std() == 0 or b.std() == 0:
            return float("nan")
        return float(np.corrcoef(a, b)[0, 1])

    rng = np.random.default_rng(seed)
    draws = np.array([rho(x[i], y[i]) for i in rng.integers(0, len(x), size=(boot, len(x)))])
    draws = draws[np.isfinite(draws)]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail]) if len(draws) else (np.nan, np.nan)
    return rho(x, y), float(low), float(high)

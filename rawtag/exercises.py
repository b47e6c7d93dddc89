"""Solutions to the chapters' exercises, kept out of the chapters so that students try first.

Each function names its exercise, and its chapter on its last line (the module's names the first);
`tests/test_exercises.py` checks every one against an independent computation.

Chapter: 01_data
"""
from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------------------------------- chapter 01

def cooccurring_pairs(labels: np.ndarray, tags: list, threshold: float = 0.5) -> list[tuple[str, str, float]]:
    """Exercise 1: every (a, b, P(b | a)) with a != b and P(b | a) >= threshold, largest first.

    Chapter: 01_data
    """
    labels = np.asarray(labels, np.float64)
    together = labels.T @ labels
    counts = np.diag(together)
    pairs = [(tags[a], tags[b], together[a, b] / counts[a]) for a in range(len(tags)) for b in range(len(tags))
             if a != b and counts[a] > 0 and together[a, b] / counts[a] >= threshold]
    return sorted(pairs, key=lambda p: -p[2])


def tag_frequency_ratio(labels_a: np.ndarray, labels_b: np.ndarray, tags: list) -> dict:
    """Exercise 2: each tag's frequency in set b divided by its frequency in set a (tags that
    set a never has are left out).

    Chapter: 01_data
    """
    fa, fb = np.asarray(labels_a).mean(axis=0), np.asarray(labels_b).mean(axis=0)
    return {t: float(fb[j] / fa[j]) for j, t in enumerate(tags) if fa[j] > 0}


# ---------------------------------------------------------------------------------------- chapter 02

def minmax_by_hand(clip: np.ndarray) -> np.ndarray:
    """Exercise 1: Eq. (1) with the clip's own minimum and maximum (mode `clip`).

    Chapter: 02_normalization
    """
    x = np.asarray(clip, np.float64)
    lo, hi = x.min(), x.max()
    return np.zeros_like(x) if hi == lo else 2 * (x - lo) / (hi - lo) - 1


def seed_spread(workspace, seeds=(0, 1, 2), **settings) -> tuple[float, float, list]:
    """Exercise 3: mean and standard deviation (ddof=1) of the validation ROC-AUC of the base
    CNN trained with each seed; returns (mean, std, AUCs).

    Chapter: 02_normalization
    """
    aucs = [workspace.train("base", seed=s, progress=False, **settings)[1]["valid"]["roc_auc"] for s in seeds]
    return float(np.mean(aucs)), float(np.std(aucs, ddof=1)), aucs


def level_tags_auc(run_a, run_b, tags=("loud", "quiet")) -> dict:
    """Exercise 2: validation ROC-AUC of `tags` and the macro mean, for two `Run`s (e.g. the
    `dataset` and the `clip` normalization): {name: (AUC of run_a, AUC of run_b)}.

    Chapter: 02_normalization
    """
    from .metrics import tag_scores

    names = run_a.config["tags"]
    a = tag_scores(run_a.labels(), run_a.logits(), names)
    b = tag_scores(run_b.labels(), run_b.logits(), names)
    out = {t: (round(a.per_tag_roc[t], 4), round(b.per_tag_roc[t], 4)) for t in tags if t in names}
    out["macro"] = (round(a.roc_auc, 4), round(b.roc_auc, 4))
    return out


# ---------------------------------------------------------------------------------------- chapter 03

def frames_after_each_stage(length: int, stride: int, pairs: int = 2, samples: int = 34950) -> list[int]:
    """Exercise 1: time steps after the strided conv and after each conv-8 + pool-4 pair.

    Chapter: 03_base_cnn
    """
    steps = [(samples - length) // stride + 1]
    for _ in range(pairs):
        steps.append(steps[-1] - 7 - 3)  # a length-8 conv then a size-4 pool, both with stride 1
    return steps


def base_parameters(length: int, n_tags: int = 50) -> dict:
    """Exercise 3: the base CNN's parameters per layer (weights + biases), by hand.

    Chapter: 03_base_cnn
    """
    return {"strided conv": length * 1 + 1, "conv 1": 1 * 32 * 8 + 32, "conv 2": 32 * 32 * 8 + 32,
            "FC 100": 32 * 100 + 100, "FC K": 100 * n_tags + n_tags}


def confident_mistake_losses(logit: float = 40.0) -> dict:
    """Exercise 4: the loss of `logit` for a negative label, from logits (stable) and through a
    float32 sigmoid + BCELoss (the sigmoid rounds to 1, and PyTorch clamps log(0) at -100).

    Chapter: 03_base_cnn
    """
    import torch

    z, y = torch.tensor([logit], dtype=torch.float32), torch.zeros(1)
    return {"BCEWithLogitsLoss": float(torch.nn.functional.binary_cross_entropy_with_logits(z, y)),
            "Sigmoid + BCELoss": float(torch.nn.functional.binary_cross_entropy(torch.sigmoid(z), y))}


# ---------------------------------------------------------------------------------------- chapter 04

def rank_agreement(ours: dict, paper: dict) -> float:
    """Exercise 2: Spearman's rank correlation over the settings both dicts hold.

    Chapter: 04_sweep
    """
    from scipy.stats import spearmanr

    keys = [k for k in ours if k in paper]
    return float(spearmanr([ours[k] for k in keys], [paper[k] for k in keys]).statistic)


def perfect_rank_p_value(n: int) -> float:
    """Exercise 2: the two-sided p-value of a perfect rank agreement (rho = +-1) between n
    settings under chance: 2 orderings of the n! are perfect.

    Chapter: 04_sweep
    """
    import math

    return 2 / math.factorial(n)


def relative_cost(settings: list[tuple[int, int]], samples: int = 34950) -> dict:
    """Exercise 3: frames per sub-clip of each (length, stride), relative to the setting with the
    fewest; the layers above the first do work in proportion to it.

    Chapter: 04_sweep
    """
    frames = {s: (samples - s[0]) // s[1] + 1 for s in settings}
    fewest = min(frames.values())
    return {s: frames[s] / fewest for s in settings}


# ---------------------------------------------------------------------------------------- chapter 05

def loss_tag_count_correlation(labels: np.ndarray, logits: np.ndarray) -> float:
    """Exercise 1: Pearson correlation between a clip's loss and its number of true tags.

    Chapter: 05_qualitative
    """
    from .metrics import per_clip_bce

    return float(np.corrcoef(per_clip_bce(labels, logits), np.asarray(labels).sum(axis=1))[0, 1])


def precision_at_k(labels: np.ndarray, logits: np.ndarray, k: int = 3) -> np.ndarray:
    """Exercise 2: per clip, the fraction of its k highest-scored tags that are true.

    Chapter: 05_qualitative
    """
    top = np.argsort(-np.asarray(logits), axis=1, kind="stable")[:, :k]
    return np.take_along_axis(np.asarray(labels), top, axis=1).mean(axis=1)


# ---------------------------------------------------------------------------------------- chapter 06

def leave_one_out_settings() -> dict:
    """Exercise 1: `Workspace.train("improved", **settings)` settings that remove one change.

    Chapter: 06_improvements
    """
    no_schedule = dict(lr=1e-3, lr_factor=0.0, lr_patience=0)
    return {"without depth": dict(widths=(128, 512)), "without width": dict(first_filters=1, widths=(32, 32, 32)),
            "without batch norm": dict(batch_norm=False), "without dropout": dict(dropout=0.0),
            "without schedule": no_schedule}


def lr_drops(history: dict) -> list[int]:
    """Exercise 2: the epochs after which the learning rate is lower than before.

    Chapter: 06_improvements
    """
    lrs = [e["lr"] for e in history["epochs"]]
    return [history["epochs"][i]["epoch"] for i in range(1, len(lrs)) if lrs[i] < lrs[i - 1] * (1 - 1e-9)]


# ---------------------------------------------------------------------------------------- chapter 07

def receptive_field(kernels_and_strides: list[tuple[int, int]]) -> tuple[int, int]:
    """Exercise 1: (receptive field, hop) in input samples of one output step after a stack of
    (kernel, stride) layers, e.g. the sample-level CNN's [(3, 3)] + 9 x [(3, 1), (3, 3)].

    Chapter: 07_beyond
    """
    field, hop = 1, 1
    for kernel, stride in kernels_and_strides:
        field += (kernel - 1) * hop
        hop *= stride
    return field, hop


def filter_peak_frequencies(weights: np.ndarray, sample_rate: int, n_fft: int = 4096) -> np.ndarray:
    """Exercise 2: the frequency (Hz) where each first-layer filter [filters, 1, taps] peaks.

    Chapter: 07_beyond
    """
    w = np.asarray(weights, np.float64).reshape(len(weights), -1)
    spectrum = np.abs(np.fft.rfft(w, n=max(n_fft, w.shape[1]), axis=1))
    return np.fft.rfftfreq(max(n_fft, w.shape[1]), 1 / sample_rate)[spectrum.argmax(axis=1)]


# ---------------------------------------------------------------------------------------- chapter 08

def transfer_by_threshold(reference, vocabulary: list, probs: np.ndarray, thresholds=(0.2, 0.3, 0.5)) -> dict:
    """Exercise 1: for each threshold of the reference tagger's probability that makes a tag present, the
    number of tags scored and the run's macro ROC-AUC (no bootstrap): how much the yardstick depends on it.

    Chapter: 08_real_music
    """
    from .metrics import rank_auc
    from .transfer import TransferError, reference_labels

    out = {}
    for threshold in thresholds:
        try:
            tags, y, _ = reference_labels(reference, vocabulary, present=threshold)
        except TransferError:  # no tag has enough files with and without it at this threshold
            out[threshold] = (0, float("nan"))
            continue
        ours = np.asarray(probs)[:, [vocabulary.index(t) for t in tags]]
        out[threshold] = (len(tags), float(np.nanmean(rank_auc(y, ours))))
    return out


def positives_auc_correlation(transfer_score) -> float:
    """Exercise 2: Spearman's correlation between a scored tag's number of files with it and the run's AUC
    on it (do the tags with more examples transfer better?).

    Chapter: 08_real_music
    """
    from scipy.stats import spearmanr

    aucs = [transfer_score.per_tag[t] for t in transfer_score.tags]
    if len(set(np.asarray(transfer_score.positives).tolist())) < 2 or len(set(aucs)) < 2:
        return float("nan")  # a constant has no rank correlation
    return float(spearmanr(transfer_score.positives, aucs).statistic)

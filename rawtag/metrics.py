"""Evaluation: per-tag ROC-AUC and PR-AUC (scikit-learn), their macro means, and per-clip loss.

Taught in chapter 03 (base CNN) and chapter 05 (qualitative results). The paper's figure of merit is the
ROC-AUC of each tag averaged over tags (macro). A tag whose evaluated clips are all positive or all
negative has no ROC curve: it is left out of the mean and listed in `excluded` (callers say so once).

`bootstrap` puts an interval around a macro ROC-AUC by resampling the evaluated clips (chapter 02 onward):
a validation set of a few hundred clips gives a number that would move by a few hundredths on another
draw of clips, and a difference smaller than that is not a finding.

Chapter: 03_base_cnn
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Scores:
    """What `tag_scores` returns: the macro ROC-AUC and PR-AUC over the tags that could be scored, each
    tag's own, and the `excluded` tags (a single class in the evaluated clips: no ROC curve).

    Chapter: 03_base_cnn
    """
    roc_auc: float  # macro mean over the tags that could be scored
    pr_auc: float
    per_tag_roc: dict = field(default_factory=dict)  # tag -> ROC-AUC (NaN where excluded)
    per_tag_pr: dict = field(default_factory=dict)
    excluded: list = field(default_factory=list)  # tags with a single class in the evaluated set

    def as_dict(self) -> dict:
        return {"roc_auc": self.roc_auc, "pr_auc": self.pr_auc, "excluded": self.excluded,
                "per_tag_roc": self.per_tag_roc, "per_tag_pr": self.per_tag_pr}


def tag_scores(y_true: np.ndarray, y_score: np.ndarray, tags: list[str] | None = None) -> Scores:
    """Per-tag and macro ROC-AUC and PR-AUC (average precision) for labels and scores [clips, tags].

    Scores may be logits or probabilities: both AUCs depend only on the ranking.

    Chapter: 03_base_cnn
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    y_true, y_score = np.asarray(y_true), np.asarray(y_score, dtype=np.float64)
    if y_true.shape != y_score.shape or y_true.ndim != 2:
        raise ValueError(f"labels {y_true.shape} and scores {y_score.shape} must both be [clips, tags]")
    tags = list(tags) if tags is not None else [str(i) for i in range(y_true.shape[1])]
    roc, pr, excluded = {}, {}, []
    for j, tag in enumerate(tags):
        positives = int(y_true[:, j].sum())
        if positives in (0, len(y_true)):
            excluded.append(tag)
            roc[tag] = pr[tag] = float("nan")
            continue
        roc[tag] = float(roc_auc_score(y_true[:, j], y_score[:, j]))
        pr[tag] = float(average_precision_score(y_true[:, j], y_score[:, j]))
    scored = [t for t in tags if t not in excluded]

    def mean(per_tag: dict) -> float:
        return float(np.mean([per_tag[t] for t in scored])) if scored else float("nan")

    return Scores(mean(roc), mean(pr), roc, pr, excluded)


def per_clip_bce(y_true: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Binary cross-entropy of each clip, averaged over its tags, computed stably from logits.

    Section VIII of the paper ranks validation clips by this to find the best and worst.

    Chapter: 05_qualitative
    """
    z, y = np.asarray(logits, np.float64), np.asarray(y_true, np.float64)
    return (np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).mean(axis=1)


def rank_auc(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """ROC-AUC of every column at once from ranks (ties share their average rank), NaN for a single-class
    column: AUC = (sum of the positives' ranks - P(P+1)/2) / (P N), the Mann-Whitney statistic.

    Chapter: 03_base_cnn
    """
    from scipy.stats import rankdata

    y = np.asarray(y_true, bool)
    ranks = rankdata(np.asarray(y_score, np.float64), axis=0)
    pos = y.sum(axis=0)
    neg = len(y) - pos
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * y).sum(axis=0) - pos * (pos + 1) / 2) / (pos * neg)
    return np.where((pos > 0) & (neg > 0), auc, np.nan)


@dataclass
class Interval:
    """A macro ROC-AUC (or a difference of two) with its bootstrap percentile interval over clips.

    Chapter: 02_normalization
    """

    value: float  # on the clips as they are
    low: float
    high: float
    level: float = 0.95
    resamples: int = 0

    @property
    def sd(self) -> float:
        """The spread implied by the interval (half-width / 1.96 for a 95 % interval)."""
        return (self.high - self.low) / 3.92

    def excludes(self, point: float = 0.0) -> bool:
        """True when `point` (0 for a difference, 0.5 for chance) lies outside the interval."""
        return not self.low <= point <= self.high

    def __str__(self) -> str:
        return f"{self.value:.4f} [{self.low:.4f}, {self.high:.4f}]"


def bootstrap(y_true: np.ndarray, y_score: np.ndarray, y_score_b: np.ndarray | None = None,
              resamples: int = 1000, level: float = 0.95, seed: int = 0) -> Interval:
    """Percentile bootstrap over clips of the macro ROC-AUC of `y_score`, or, given `y_score_b`, of the
    paired difference AUC(a) - AUC(b) on the same resampled clips (both models scored on the same clips).

    Each resample draws as many clips as there are, with replacement; tags with a single class in a
    resample are left out of that resample's mean. Every chapter from 02 on
    puts its AUCs in such intervals.

    Chapter: 02_normalization
    """
    y_true = np.asarray(y_true)
    rng = np.random.default_rng(seed)

    def mean(aucs):  # NaN (not a warning) when no tag has both classes in this resample
        scored = aucs[~np.isnan(aucs)]
        return float(scored.mean()) if len(scored) else float("nan")

    def macro(rows):
        value = mean(rank_auc(y_true[rows], y_score[rows]))
        if y_score_b is not None:
            value -= mean(rank_auc(y_true[rows], y_score_b[rows]))
        return value

    y_score = np.asarray(y_score)
    y_score_b = None if y_score_b is None else np.asarray(y_score_b)
    n = len(y_true)
    draws = np.array([macro(rng.integers(0, n, n)) for _ in range(resamples)])
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(draws, [tail, 100 - tail])
    return Interval(float(macro(np.arange(n))), float(low), float(high), level, resamples)


def seed_interval(values, level: float = 0.95) -> Interval:
    """Mean of runs that differ only in their seed, with a t interval for that mean; chapter 06 uses it too.

    Chapter: 04_sweep
    """
    from scipy.stats import t

    values = np.asarray(values, np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return Interval(mean, float("nan"), float("nan"), level, len(values))
    half = t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return Interval(mean, mean - half, mean + half, level, len(values))

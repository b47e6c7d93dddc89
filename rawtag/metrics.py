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
from functools import lru_cache

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


@dataclass
class Estimate(Interval):
    """An estimate with a t interval: also its standard error `se` and the `df` (degrees of freedom) of the
    t distribution behind the interval, which is what a power calculation needs (`detectable`).

    Chapter: 04_sweep
    """

    se: float = float("nan")
    df: int = 0


def _t_estimate(value: float, se: float, df: int, level: float) -> Estimate:
    from scipy.stats import t

    if df < 1 or not np.isfinite(se):
        return Estimate(float(value), float("nan"), float("nan"), level, 0, float("nan"), int(df))
    half = float(t.ppf(0.5 + level / 2, df) * se)
    return Estimate(float(value), float(value) - half, float(value) + half, level, 0, float(se), int(df))


def paired_difference(a, b, level: float = 0.95) -> Estimate:
    """Mean over seeds of a[i] - b[i], where a[i] and b[i] are two settings' scores from the same seed i
    (same training order and clips), with a t interval over seeds: the seed-to-seed noise both settings
    share cancels in each difference. The interval is about these validation clips; clip-sampling noise
    is `bootstrap`'s business.

    Chapter: 04_sweep
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired scores must be two equal 1-D arrays (one value per seed): {a.shape}, {b.shape}")
    d = a - b
    n = len(d)
    se = d.std(ddof=1) / np.sqrt(n) if n > 1 else float("nan")
    return _t_estimate(d.mean(), se, n - 1, level)


def block_trend(values, x, level: float = 0.95) -> Estimate:
    """Slope of `values` [blocks, settings] against `x` (one number per setting, e.g. log2 of the stride),
    each block (a seed) with its own intercept: least squares on the values centred within each block, with
    a t interval on blocks x (settings - 1) - 1 degrees of freedom. Residuals include any departure of the
    settings from a straight line, so a curved relation widens the interval rather than narrowing it.

    Chapter: 04_sweep
    """
    y = np.asarray(values, np.float64)
    x = np.asarray(x, np.float64)
    if y.ndim != 2 or y.shape[1] != len(x):
        raise ValueError(f"values must be [blocks, settings] with one x per setting; got {y.shape} and {len(x)} x")
    if np.ptp(x) == 0:
        raise ValueError("x must take at least two different values for a slope")
    yc = y - y.mean(axis=1, keepdims=True)
    xc = np.broadcast_to(x - x.mean(), y.shape)
    sxx = float((xc ** 2).sum())
    slope = float((xc * yc).sum() / sxx)
    df = y.size - y.shape[0] - 1
    se = float(np.sqrt(((yc - slope * xc) ** 2).sum() / df / sxx)) if df > 0 else float("nan")
    return _t_estimate(slope, se, df, level)


def power_t(effect: float, se: float, df: int, level: float = 0.95) -> float:
    """Power of the two-sided t test at `level` (5 % false alarms at 0.95) to find a true `effect` whose
    estimate has standard error `se` on `df` degrees of freedom: the chance that the interval excludes 0.
    Exact: the noncentral t distribution, by numerical integration.

    Chapter: 04_sweep
    """
    from scipy.stats import norm, t

    crit = t.ppf(0.5 + level / 2, df)
    ncp = abs(effect) / se
    # T = (Z + ncp) / sqrt(V / df), V ~ chi2(df): average P(|T| > crit | V) over V's quantiles (Gauss-Legendre
    # in the quantile u, so any df works; scipy's nct returns NaN far in its tails)
    root, w = _chi_nodes(int(df))
    s = crit * root
    return float(min(1.0, np.sum(w * (norm.sf(s - ncp) + norm.cdf(-s - ncp)))))


@lru_cache(maxsize=256)
def _chi_nodes(df: int) -> tuple[np.ndarray, np.ndarray]:
    """sqrt(V / df) at the Gauss-Legendre nodes of V's quantiles (V ~ chi2(df)), and the weights (sum 1)."""
    from scipy.stats import chi2, norm

    u, w = np.polynomial.legendre.leggauss(400)
    if df <= 50:
        return np.sqrt(chi2.ppf((u + 1) / 2, df) / df), w / 2
    a = 2 / (9 * df)  # Wilson-Hilferty: (V / df)^(1/3) is nearly normal, mean 1 - a, variance a (fast for large df)
    return np.maximum(1 - a + norm.ppf((u + 1) / 2) * np.sqrt(a), 0) ** 1.5, w / 2


def detectable(se: float, df: int, power: float = 0.8, level: float = 0.95) -> float:
    """The minimal detectable difference: the smallest true effect that a two-sided t test at `level` with
    this standard error and these degrees of freedom finds with probability `power` (about
    (t quantile at level + t quantile at power) x se).

    Chapter: 04_sweep
    """
    from scipy.optimize import brentq

    if not (np.isfinite(se) and se > 0 and df >= 1):
        return float("nan")
    from scipy.stats import t

    high = (t.ppf(0.5 + level / 2, df) + 3) * se  # widen until the power is reached (heavy tails at small df)
    while power_t(high, se, df, level) < power:
        high *= 2
    return float(brentq(lambda e: power_t(e, se, df, level) - power, 0.0, high))


def seeds_needed(effect: float, sd: float, power: float = 0.8, level: float = 0.95, most: int = 100_000) -> int:
    """How many seeds a paired comparison needs to find a true mean difference `effect` with probability
    `power`, when the difference varies between seeds with standard deviation `sd` (`paired_difference`'s
    se x sqrt(n)). At least 2 (one seed has no interval); `most` + 1 means "more than `most`".

    Chapter: 04_sweep
    """
    if not (np.isfinite(sd) and sd > 0):
        raise ValueError(f"the seed standard deviation must be a positive number, got {sd}")
    def enough(n):
        return power_t(abs(effect), sd / np.sqrt(n), n - 1, level) >= power

    low, high = 1, 2  # power grows with n: double until enough, then bisect (low: not enough, or 1)
    while not enough(high):
        if high > most:
            return most + 1
        low, high = high, 2 * high
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return high

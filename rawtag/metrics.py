"""Evaluation: per-tag ROC-AUC and PR-AUC (scikit-learn), their macro means, and per-clip loss.

Taught in chapter 03 (base CNN) and chapter 05 (qualitative results). The paper's figure of merit is the
ROC-AUC of each tag averaged over tags (macro). A tag whose evaluated clips are all positive or all
negative has no ROC curve: it is left out of the mean, with a warning, and counted in `excluded`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Scores:
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
    if excluded:
        warnings.warn(f"{len(excluded)} tag(s) have a single class in the evaluated clips and are left out of "
                      f"the macro AUC: {', '.join(excluded[:8])}{' ...' if len(excluded) > 8 else ''}",
                      stacklevel=2)
    scored = [t for t in tags if t not in excluded]
    mean = lambda d: float(np.mean([d[t] for t in scored])) if scored else float("nan")  # noqa: E731
    return Scores(mean(roc), mean(pr), roc, pr, excluded)


def per_clip_bce(y_true: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Binary cross-entropy of each clip, averaged over its tags, computed stably from logits.

    Section VIII of the paper ranks validation clips by this to find the best and worst. Chapter 05.
    """
    z, y = np.asarray(logits, np.float64), np.asarray(y_true, np.float64)
    return (np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).mean(axis=1)

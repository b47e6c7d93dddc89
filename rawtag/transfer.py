"""Transfer to real music: how far a tagger trained on a stand-in agrees with taggers trained on real MTAT.

Taught in chapter 08 (real music). A folder of real recordings comes with `reference.tsv`: for each file,
the 50 MTAT tag probabilities of two taggers that their authors trained on the real MagnaTagATune
(`musicnn:TAG`, `vgg:TAG`). The measure:

- a tag is present in a file where the reference tagger (`musicnn`) gives it >= 0.3;
- the reference's 50 tags are mapped onto a run's vocabulary with MTAT's synonym groups (a merged tag
  such as `male` takes the largest probability of its columns `male`, `man`, `male vocal`, ...);
- the run is scored by macro ROC-AUC over the tags with at least 5 files with and 5 without the tag;
- the second real-MTAT tagger (`vgg`), scored the same way, is the ceiling: what a model trained on the
  real data reaches on these labels.

Each AUC comes with a percentile bootstrap interval over files (`rawtag.metrics.bootstrap`).

Chapter: 08_real_music
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data.mtat import SYNONYMS
from .metrics import Interval, bootstrap, rank_auc

REFERENCE = "reference.tsv"
REFERENCE_TAGGER = "musicnn"  # defines the labels
CEILING_TAGGER = "vgg"  # a second real-MTAT tagger: the ceiling
PRESENT = 0.3  # a tag is present where the reference tagger gives it at least this
MIN_FILES = 5  # a tag is scored where at least this many files have it, and this many lack it


class TransferError(ValueError):
    """A folder of real music that cannot be scored; the message names the problem and the fix.

    Chapter: 08_real_music
    """


@dataclass
class Reference:
    """A folder of real recordings and the two real-MTAT taggers' probabilities for each file.

    Chapter: 08_real_music
    """

    folder: Path
    files: list[str]  # file names, in the order of the rows
    sources: list[str]  # where each file comes from (the table's `package` column; "" where it has none)
    probs: dict[str, dict[str, np.ndarray]]  # tagger -> MTAT tag -> probability per file


def read_reference(folder: str | os.PathLike) -> Reference:
    """Read `reference.tsv` of a folder of real recordings (see the module's docstring).

    Chapter: 08_real_music
    """
    folder = Path(folder)
    path = folder / REFERENCE
    if not path.is_file():
        raise TransferError(f"{folder} has no {REFERENCE}; give the folder of real recordings that holds it")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows or "file" not in rows[0]:
        raise TransferError(f"{path} has no rows or no 'file' column; it is not a reference table")
    probs: dict[str, dict[str, np.ndarray]] = {}
    for column in rows[0]:
        tagger, sep, tag = column.partition(":")
        if sep and tagger in (REFERENCE_TAGGER, CEILING_TAGGER):
            try:
                probs.setdefault(tagger, {})[tag] = np.array([float(r[column]) for r in rows])
            except (TypeError, ValueError):
                raise TransferError(f"{path}: column {column!r} holds a value that is not a number") from None
    missing = {REFERENCE_TAGGER, CEILING_TAGGER} - set(probs)
    if missing:
        raise TransferError(f"{path} has no {' or '.join(sorted(missing))}:TAG columns")
    absent = [r["file"] for r in rows if not (folder / r["file"]).is_file()]
    if absent:
        raise TransferError(f"{len(absent)} files of {path} are not in {folder} (first: {absent[0]})")
    return Reference(folder, [r["file"] for r in rows], [r.get("package") or "" for r in rows], probs)


def merged_probs(tag_probs: dict[str, np.ndarray], vocabulary: list[str]) -> dict[str, np.ndarray]:
    """The probabilities of MTAT's tags mapped onto `vocabulary`: a tag of the vocabulary takes the largest
    probability of the MTAT tags it stands for (itself, or the columns of its synonym group). Tags of the
    vocabulary that none of the MTAT tags stands for are left out.

    Chapter: 08_real_music
    """
    out = {}
    for tag in vocabulary:
        columns = [c for c in SYNONYMS.get(tag, (tag,)) if c in tag_probs]
        if tag in tag_probs and tag not in columns:
            columns.append(tag)
        if columns:
            out[tag] = np.max([tag_probs[c] for c in columns], axis=0)
    return out


@dataclass
class TransferScore:
    """A run's agreement with the real-MTAT reference on real music, beside the ceiling.

    Chapter: 08_real_music
    """

    tags: list[str]  # the scored tags (enough files with and without)
    positives: np.ndarray  # files with each scored tag
    auc: Interval  # the run's macro ROC-AUC with its bootstrap interval over files
    ceiling: Interval  # the second real-MTAT tagger's, on the same labels and files
    per_tag: dict[str, float]  # the run's ROC-AUC per scored tag
    ceiling_per_tag: dict[str, float]


def reference_labels(reference: Reference, vocabulary: list[str], present: float = PRESENT):
    """The scored tags of `vocabulary`, their labels [files, tags] (the reference tagger's probability >=
    `present`) and the ceiling tagger's probabilities for them.

    Chapter: 08_real_music
    """
    labels = {t: p >= present for t, p in merged_probs(reference.probs[REFERENCE_TAGGER], vocabulary).items()}
    n = len(reference.files)
    tags = [t for t, y in labels.items() if MIN_FILES <= y.sum() <= n - MIN_FILES]
    if not tags:
        raise TransferError(f"no tag of the run's vocabulary has {MIN_FILES} files with it and {MIN_FILES} "
                            f"without it among the {n} files; a larger folder of real music is needed")
    ceiling = merged_probs(reference.probs[CEILING_TAGGER], tags)
    y = np.stack([labels[t] for t in tags], axis=1).astype(np.int8)
    return tags, y, np.stack([ceiling[t] for t in tags], axis=1)


def score(reference: Reference, vocabulary: list[str], probs: np.ndarray, resamples: int = 1000,
          seed: int = 0, present: float = PRESENT) -> TransferScore:
    """Score a run's probabilities `probs` [files, len(vocabulary)] (rows in the order of
    `reference.files`) against the reference (a tag present where it gives >= `present`), beside the
    ceiling.

    Chapter: 08_real_music
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (len(reference.files), len(vocabulary)):
        raise TransferError(f"probabilities of shape {probs.shape} for {len(reference.files)} files and "
                            f"{len(vocabulary)} tags")
    tags, y, ceiling = reference_labels(reference, vocabulary, present)
    ours = probs[:, [vocabulary.index(t) for t in tags]]
    per_tag, ceiling_per_tag = rank_auc(y, ours), rank_auc(y, ceiling)
    return TransferScore(tags, y.sum(axis=0), bootstrap(y, ours, resamples=resamples, seed=seed),
                         bootstrap(y, ceiling, resamples=resamples, seed=seed),
                         dict(zip(tags, per_tag.tolist(), strict=True)),
                         dict(zip(tags, ceiling_per_tag.tolist(), strict=True)))


def paired_change(reference: Reference, vocabulary: list[str], probs_a: np.ndarray, probs_b: np.ndarray,
                  resamples: int = 1000, seed: int = 0, present: float = PRESENT) -> Interval:
    """The paired difference of macro ROC-AUC, `probs_a` minus `probs_b` (both [files, len(vocabulary)],
    e.g. two runs, or one run on filtered and on unfiltered audio), over the scored tags, with a bootstrap
    interval over files resampled together for both.

    Chapter: 08_real_music
    """
    tags, y, _ = reference_labels(reference, vocabulary, present)
    columns = [vocabulary.index(t) for t in tags]
    return bootstrap(y, np.asarray(probs_a)[:, columns], np.asarray(probs_b)[:, columns],
                     resamples=resamples, seed=seed)


def band_pass(low: float | None = None, high: float | None = None, order: int = 4):
    """An effect for `tag_files` that keeps one band of a signal: a Butterworth high-pass at `low` Hz and
    low-pass at `high` Hz (either may be None), each of `order`, run forward and backward (no phase shift,
    so onsets stay where they were). `band_pass(high=2000)` keeps what lies below 2 kHz;
    `band_pass(low=200)` removes the bass. The effect takes (signal, sample rate) and returns the filtered
    signal.

    Chapter: 08_real_music
    """
    if low is None and high is None:
        raise ValueError("band_pass needs a low or a high edge (in Hz)")
    if (low is not None and low <= 0) or (high is not None and low is not None and high <= low):
        raise ValueError(f"band_pass edges must satisfy 0 < low < high, got low={low}, high={high}")

    def effect(signal: np.ndarray, rate: int) -> np.ndarray:
        from scipy.signal import butter, sosfiltfilt

        out = np.asarray(signal, dtype=np.float64)
        for edge, kind in ((low, "highpass"), (high, "lowpass")):
            if edge is not None:
                if edge >= rate / 2:
                    raise ValueError(f"band_pass edge {edge} Hz is at or above the Nyquist frequency "
                                     f"({rate / 2:g} Hz) of the run's {rate} Hz audio")
                out = sosfiltfilt(butter(order, edge, kind, fs=rate, output="sos"), out)
        return out.astype(np.float32)

    return effect


def tag_files(run: str | os.PathLike, reference: Reference, progress: bool = False, effect=None):
    """A run's tag probabilities [files, tags] for every file of `reference`, and the run's vocabulary.
    `effect` (e.g. `band_pass(high=2000)`) is applied to each decoded file before it is tagged.

    Chapter: 08_real_music
    """
    from .inference import load_run, tag_audio
    from .progress import tqdm

    model, config = load_run(run)
    rows = []
    for name in tqdm(reference.files, desc="tag", unit="file", disable=not progress, leave=False):
        tagged = tag_audio(reference.folder / name, model, config, effect)
        rows.append([tagged[t] for t in config["tags"]])
    return np.array(rows), list(config["tags"])

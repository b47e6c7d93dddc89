"""What chapters display besides figures: tables, audio players, and numbers glued into the prose.

`glue` stores a value under a name for the book's `{glue:text}` role (myst-nb), so the prose cites the
number the chapter just computed instead of a typed-in one; outside a myst-nb install it only returns it.
`table` formats each column's numbers by what the column holds (AUCs to 4 decimals, seconds to 1, clips
per second to none, counts with thousands separators); `results_table` shows a training run's results
file as such a table, so no chapter prints raw JSON.

Chapter: 01_data
"""
from __future__ import annotations

import math
import re

import numpy as np


def glue(name: str, value) -> None:
    """Make `value` citable in the chapter's prose as {glue:text}`name` (or `name:.4f`). Without myst-nb
    (a bare Colab kernel) it does nothing: the prose then shows the role's name instead of the number.

    Chapter: 01_data
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=False)


# (pattern on the lower-cased header, format): the first that matches picks a float column's format.
COLUMN_RULES = [
    (re.compile(r"\bchange\b|\bdifference\b|\bdelta\b"), "+.4f"),  # a change in AUC: signed
    (re.compile(r"auc"), ".4f"),
    (re.compile(r"clips\s*/\s*s\b|per second"), "~,.0f"),  # ~: a slow rate keeps two significant digits
    (re.compile(r"seconds|\bs per\b|\(s\)|\bs\b\s*(?:\(|$)"), ",.1f"),
]


def column_format(header, floats: str | None = None, formats: dict | None = None) -> str:
    """The format of a float column: `formats[header]` if given, else the first of `COLUMN_RULES` that
    matches the header (AUC: .4f; seconds, `s per ...`, `... s`: .1f; clips/s: .0f, or two significant
    digits below 10), else `floats` (default .4f).

    Chapter: 01_data
    """
    if formats and header in formats:
        return formats[header]
    name = str(header).lower()
    for pattern, spec in COLUMN_RULES:
        if pattern.search(name):
            return spec
    return floats or ".4f"


def number(value, spec: str = ".4f") -> str:
    """One value as a reader should see it: floats with `spec` (NaN and None as n/a), ints with
    thousands separators, anything else as text.

    Chapter: 01_data
    """
    if value is None:
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "n/a"
        if spec.startswith("~"):  # "~,.0f": as spec, but 0.31 clips/s is "0.31", not "0"
            spec = spec[1:]
            if 0 < abs(value) < 9.5:
                return format(float(value), ".2g")
        return format(float(value), spec)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return str(value)


def table(header: list, rows: list, floats: str | None = None, formats: dict | None = None):
    """A Markdown table (rendered as HTML in the book and in Jupyter).

    Float cells are formatted per column (see `column_format`): `formats` maps a header to a format
    (`{"s per epoch": ".2f"}`), the header rules cover AUCs, seconds and clips/s, and `floats` (default
    .4f) the other float columns. Ints get thousands separators; NaN and None show as n/a.

    Chapter: 01_data
    """
    from IPython.display import Markdown

    specs = [column_format(h, floats, formats) for h in header]

    def cell(v, spec):
        return number(v, spec).replace("|", "\\|")

    lines = ["| " + " | ".join(str(h).replace("|", "\\|") for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v, spec) for v, spec in zip(row, specs, strict=False)) + " |" for row in rows]
    return Markdown("\n".join(lines))


def results_rows(results: dict) -> list[list[str]]:
    """The rows of `results_table`: [what, value] pairs, numbers already formatted.

    Chapter: 03_base_cnn
    """
    rows = []
    epochs, best = results.get("epochs"), results.get("best_epoch")
    if best is not None:
        rows.append(["best epoch (chosen on validation ROC-AUC)", f"{best} of {epochs}" if epochs else f"{best}"])
    valid = results.get("valid") or {}
    for key, label in (("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC")):
        if key in valid:
            rows.append([f"validation {label}, best epoch", number(valid[key], ".4f")])
    last = results.get("valid_last_epoch") or {}
    final = results.get("final_valid_roc_auc")
    final = last.get("roc_auc") if final is None else final
    if final is not None:
        at = f" (epoch {last['epoch']})" if "epoch" in last else ""
        rows.append([f"validation ROC-AUC, last epoch{at}", number(final, ".4f")])
    test = results.get("test")
    if test:
        for key, label in (("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC")):
            if key in test:
                rows.append([f"test {label}, best epoch", number(test[key], ".4f")])
    elif "test" in results:
        rows.append(["test ROC-AUC", "n/a (no test split)"])
    if "train_clips" in results:
        rows.append(["training clips", number(results["train_clips"])])
    for split in ("valid", "test"):
        if (results.get(split) or {}).get("clips") is not None:
            rows.append([f"{'validation' if split == 'valid' else 'test'} clips", number(results[split]["clips"])])
    return rows


def results_table(results: dict):
    """A training run's results (`results.json`: best_epoch, epochs, valid {roc_auc, pr_auc, clips}, test
    or None, the last epoch's validation AUC, train_clips) as a small two-column table, AUCs to 4
    decimals, to show instead of the JSON.

    Chapter: 03_base_cnn
    """
    return table(["result", "value"], results_rows(results))


def audio(samples: np.ndarray, sample_rate: int, seconds: float | None = 5.0):
    """An audio player for the first `seconds` of `samples` (int16 or float); short keeps the book small.

    Chapter: 01_data
    """
    from IPython.display import Audio

    x = np.asarray(samples)
    if seconds is not None:
        x = x[: int(seconds * sample_rate)]
    x = x.astype(np.float32) / (32768.0 if np.issubdtype(np.asarray(samples).dtype, np.integer) else 1.0)
    return Audio(x, rate=sample_rate, normalize=False)

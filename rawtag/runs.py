"""A finished training run, read back: what `rawtag.train.fit` wrote into its run folder.

Taught in chapter 03 (base CNN); every chapter reads runs through `Run` instead of opening the files. A
run folder holds `config.json`, `history.json`, `results.json`, `predictions.npz` (the best model's
logits and labels per split) and `checkpoints/`; the names live here, and `rawtag.train` and
`rawtag.inference` use them.

Chapter: 03_base_cnn
"""
from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

import numpy as np

from .atomic import read_json

CONFIG, HISTORY, RESULTS, PREDICTIONS = "config.json", "history.json", "results.json", "predictions.npz"
CHECKPOINTS = "checkpoints"
LAST, BEST = f"{CHECKPOINTS}/last.pt", f"{CHECKPOINTS}/best.pt"  # resume from the one, evaluate the other
RUN_FILES = (CONFIG, HISTORY, RESULTS, PREDICTIONS, CHECKPOINTS)  # what `--force` removes, and only these


class Run:
    """One run folder. Validation scores come in two kinds: `valid_last` (the last epoch's model) and
    `valid_best` (the best epoch's, chosen on the same validation clips, so optimistic).

    Chapter: 03_base_cnn
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not (self.path / RESULTS).exists():
            raise FileNotFoundError(f"{self.path} holds no finished run (no {RESULTS}); train it first "
                                    f"(`rawtag train --out {self.path}` or `Workspace.train`)")

    @classmethod
    def finished(cls, path: str | os.PathLike) -> Run | None:
        """The run at `path` if it has finished, else None (a chapter falls back to a run of its own)."""
        return cls(path) if (Path(path) / RESULTS).exists() else None

    def __repr__(self) -> str:
        return f"Run({self.path.name!r})"

    def _read(self, name: str) -> dict:
        """A record of the run; a damaged one is a one-line error naming it and the fix."""
        return read_json(self.path / name, f"train the run again: `rawtag train ... --out {self.path} --force`")

    @cached_property
    def config(self) -> dict:
        return self._read(CONFIG)

    @cached_property
    def history(self) -> dict:
        return self._read(HISTORY)

    @cached_property
    def results(self) -> dict:
        return self._read(RESULTS)

    @cached_property
    def _predictions(self) -> dict:
        with np.load(self.path / PREDICTIONS) as saved:
            return dict(saved)

    def logits(self, split: str = "valid") -> np.ndarray:
        """The best model's logits [clips, tags] on `split`."""
        return self._predictions[f"{split}_logits"]

    def labels(self, split: str = "valid") -> np.ndarray:
        return self._predictions[f"{split}_labels"]

    def rows(self, split: str = "valid") -> np.ndarray:
        """The rows of the prepared set the predictions belong to."""
        return self._predictions[f"{split}_rows"]

    @property
    def valid_best(self) -> float:
        return self.results["valid"]["roc_auc"]

    @property
    def valid_last(self) -> float:
        return self.results["valid_last_epoch"]["roc_auc"]

    @property
    def test(self) -> float | None:
        """Test ROC-AUC of the best model; None where the split scheme has no test split (the paper's)."""
        return self.results["test"]["roc_auc"] if self.results.get("test") else None

    @property
    def best_epoch(self) -> int:
        return self.results["best_epoch"]

    @property
    def epochs(self) -> int:
        return self.results["epochs"]

    @property
    def train_clips(self) -> int:
        return self.results["train_clips"]

    @property
    def budget(self) -> str:
        """What the run trained on, in words: "10 epochs on 160 training clips" (chapters 06 and 08)."""
        return f"{self.epochs} epochs on {self.train_clips:,} training clips"

    @property
    def valid_clips(self) -> int:
        return self.results["valid"]["clips"]

    @property
    def clips_per_second(self) -> float:
        """Training throughput, the median over epochs (one epoch can be slowed by other work)."""
        return float(np.median([e["train_clips_per_s"] for e in self.history["epochs"]]))

    @property
    def seconds_per_epoch(self) -> float:
        return float(np.mean([e["train_seconds"] for e in self.history["epochs"]]))

    @property
    def learning_rates(self) -> list[float]:
        return [e["lr"] for e in self.history["epochs"]]

    @property
    def sample_rate(self) -> int:
        """The rate of the audio the run was trained on, in Hz (its model refuses any other)."""
        return self.config["sample_rate"]

    def model(self, device: str = "cpu"):
        """The best model, in eval mode."""
        from .inference import load_run

        return load_run(self.path, device)[0]


def runs_table(runs: dict, label: str, test: bool = True):
    """A table of named runs: validation ROC-AUC at the last and the best epoch, PR-AUC, and test ROC-AUC
    where the split has one. `label` names the data and profile in the headers. Chapters 02-07.

    Chapter: 03_base_cnn
    """
    from .show import table

    with_test = test and any(r.test is not None for r in runs.values())
    header = ["run", "epochs", f"valid ROC-AUC, last epoch ({label})",
              "valid ROC-AUC, best epoch (chosen on valid: optimistic)", "best epoch", "valid PR-AUC (best)"]
    rows = [[name, r.epochs, r.valid_last, r.valid_best, r.best_epoch, r.results["valid"]["pr_auc"]]
            for name, r in runs.items()]
    if with_test:
        header.append(f"test ROC-AUC ({label})")
        rows = [row + [r.test if r.test is not None else float("nan")]
                for row, r in zip(rows, runs.values(), strict=True)]
    return table(header, rows)

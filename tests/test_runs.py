"""Run reads a finished run folder back; train_all trains several runs side by side and reads finished ones."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rawtag.runs import Run, runs_table
from rawtag.train import TrainConfig, fit


@pytest.fixture(scope="module")
def finished(tone_prepared, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "r"
    fit(tone_prepared, out, TrainConfig(epochs=2, lr=1e-2, max_train_clips=16), progress=False)
    return out


@pytest.mark.slow
def test_run_reads_what_fit_wrote(finished):
    run = Run(finished)
    results = json.loads((finished / "results.json").read_text())
    assert run.valid_best == results["valid"]["roc_auc"] and run.epochs == 2
    assert run.valid_last == run.history["epochs"][-1]["valid_roc_auc"]
    assert run.logits("valid").shape == run.labels("valid").shape == (run.valid_clips, len(run.config["tags"]))
    assert run.test == results["test"]["roc_auc"]  # the tone set uses the folder split: it has a test split
    assert len(run.learning_rates) == 2 and run.clips_per_second > 0
    assert run.sample_rate == 12000 and Run.finished(finished).path == finished
    model = run.model()
    assert not model.training
    assert "valid ROC-AUC, last epoch (tones)" in runs_table({"r": run}, "tones").data


def test_run_of_an_unfinished_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished run"):
        Run(tmp_path)
    assert Run.finished(tmp_path) is None and Run.finished(tmp_path / "never") is None


@pytest.mark.slow
def test_train_all_runs_two_processes_and_reads_back(tone_prepared, tmp_path, monkeypatch):
    import shutil

    from rawtag.concurrent import train_all
    from rawtag.workspace import Workspace

    monkeypatch.chdir(tmp_path)
    ws = Workspace("smoke", data_root=tmp_path / "data", runs_root=tmp_path / "runs")
    shutil.copytree(tone_prepared, ws.prepared)  # a small prepared set where the workspace looks for its own
    jobs = [("base", dict(seed=0, epochs=1, max_train_clips=4)), ("base", dict(seed=1, epochs=1, max_train_clips=4))]
    dirs = train_all(ws, jobs, processes=2, progress=False)
    assert dirs == [ws.run_dir("base", **settings) for _, settings in jobs]
    first = [Run(d).valid_best for d in dirs]
    assert not np.allclose(*[Run(d).logits() for d in dirs])  # different seeds, different runs
    stamp = (dirs[0] / "results.json").stat().st_mtime_ns
    assert [Run(d).valid_best for d in train_all(ws, jobs, progress=False)] == first
    assert (dirs[0] / "results.json").stat().st_mtime_ns == stamp  # read back, not retrained


def test_a_worker_takes_the_cores_that_finished_runs_leave(monkeypatch):
    import multiprocessing

    from rawtag import concurrent

    running = multiprocessing.Value("i", 2)
    monkeypatch.setattr(concurrent, "_running", running)
    monkeypatch.setattr(concurrent, "_cores", 4)
    assert concurrent._fair_threads() == 2
    running.value = 1  # the other run finished
    assert concurrent._fair_threads() == 4
    running.value = 6  # more runs than cores: still one thread each
    assert concurrent._fair_threads() == 1


@pytest.mark.slow
def test_fit_asks_for_its_threads_before_every_batch(tone_prepared, tmp_path):
    before, asked = torch.get_num_threads(), []

    def threads():
        asked.append(len(asked) % 2 + 1)  # 1, 2, 1, 2, ...
        return asked[-1]

    try:
        fit(tone_prepared, tmp_path / "r", TrainConfig(epochs=2, max_train_clips=20, batch_size=10), progress=False,
            threads=threads)
        assert len(asked) == 2 * (2 + 1)  # each epoch: 2 training batches, then validation
        assert torch.get_num_threads() == asked[-1]
    finally:
        torch.set_num_threads(before)

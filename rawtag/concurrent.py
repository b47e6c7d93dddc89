"""Several independent training runs at once, one process each, so that every core is busy.

Taught in chapter 04 (the sweep). The base CNN is small: one training step of 10 clips cannot keep two
cores busy with threads, so two runs side by side, each on one thread, finish sooner than the same runs
one after another on two threads (`benchmarks/train_bench.py` measures both). Runs are rarely equally
long (chapter 06 trains the improved CNN beside a short base run), so each worker takes the cores the
others leave: before every training batch a run sets its threads to the cores divided by the runs still
in progress, and a run left alone finishes on every core. A run that is already finished is read back,
never retrained; a failed run raises in the caller with its settings named.

Chapter: 04_sweep
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields
from pathlib import Path

_running = None  # in a worker process: the shared count of runs in progress
_cores = 1


def _start_worker(running, cores: int) -> None:
    global _running, _cores
    _running, _cores = running, cores


def _fair_threads() -> int:
    """This run's share of the cores now: all of them once the other runs have finished."""
    return max(1, _cores // max(1, _running.value))


def _train_one(workspace_fields: dict, model: str, settings: dict) -> str:
    from .workspace import Workspace

    with _running.get_lock():
        _running.value += 1
    try:
        run_dir, _ = Workspace(**workspace_fields).train(model, progress=False, threads=_fair_threads, **settings)
    finally:
        with _running.get_lock():
            _running.value -= 1
    return str(run_dir)


def train_all(workspace, jobs: list[tuple[str, dict]], processes: int | None = None, progress: bool = True
              ) -> list[Path]:
    """Train every (model, settings) job of `workspace` (as `Workspace.train(model, **settings)` would),
    `processes` at a time (default: one per core, at most the number of unfinished jobs), each process on
    `cores // runs in progress` threads. Returns the run folders in the order of `jobs`.

    Chapter: 04_sweep
    """
    from .progress import tqdm

    todo = [i for i, (model, settings) in enumerate(jobs)
            if not (workspace.run_dir(model, **settings) / "results.json").exists()]
    cores = os.cpu_count() or 1
    processes = max(1, min(processes or cores, len(todo) or 1))
    state = {f.name: getattr(workspace, f.name) for f in fields(workspace)}
    for model, settings in jobs:  # prepare once (each rate a job needs), before the workers need it
        workspace.data_for(workspace.config(model, **settings), progress=False)
    if todo:
        context = multiprocessing.get_context("spawn")  # threads and fork do not mix
        running = context.Value("i", 0)
        with ProcessPoolExecutor(processes, mp_context=context, initializer=_start_worker,
                                 initargs=(running, cores)) as pool:
            futures = {i: pool.submit(_train_one, state, *jobs[i]) for i in todo}
            with tqdm(total=len(todo), desc=f"training {len(todo)} runs, {processes} at a time", unit="run",
                      disable=not progress) as bar:
                for i, future in futures.items():
                    try:
                        future.result()
                    except Exception as e:
                        raise RuntimeError(f"training {jobs[i][0]} with {jobs[i][1]} failed: {e}") from e
                    bar.update()
    return [workspace.run_dir(model, **settings) for model, settings in jobs]

"""Several independent training runs at once, one process each, so that every core is busy.

Taught in chapter 04 (the sweep). The base CNN is small: one training step of 10 clips cannot keep two
cores busy with threads, so two runs side by side, each on one thread, finish sooner than the same runs
one after another on two threads (`benchmarks/train_bench.py` measures both). Runs are rarely equally
long (chapter 06 trains the improved CNN beside a short base run), so each worker takes the cores the
others leave: before every training batch a run sets its threads to the cores divided by the runs still
in progress, and a run left alone finishes on every core. A run that is already finished is read back,
never retrained; a failed run raises in the caller with its settings named. `die_with_parent` is what
every worker process of rawtag runs first (the command line's, `prepare`'s decoders): a killed command
leaves no worker behind.

Chapter: 04_sweep
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields
from functools import cache
from pathlib import Path

_running = None  # in a worker process: the shared count of runs in progress
_cores = 1


def die_with_parent(parent: int) -> None:
    """In a new child process of `parent` (its pid): ask Linux to SIGKILL it when the parent dies (a no-op
    elsewhere), exit at once if the parent is already gone, and take SIGTERM's default action (the parent's
    SIGTERM handler is inherited). A worker blocked on its queue then never outlives a killed command.

    Chapter: 01_data
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


_forking = 0  # the pid of the process that is forking (set just before each fork once `guard_forks` ran)


def _remember_forking() -> None:
    global _forking
    _forking = os.getpid()


@cache
def guard_forks() -> None:
    """From now on, every process forked from this one (a pool's workers) runs `die_with_parent` first.
    Once per process; the command line calls it.

    Chapter: 01_data
    """
    os.register_at_fork(before=_remember_forking, after_in_child=lambda: die_with_parent(_forking))


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

"""Several independent training runs at once, one process each, so that every core is busy.

Taught in chapter 04 (the sweep). The base CNN is small: one training step of 10 clips cannot keep two
cores busy with threads, so two runs side by side, each on one thread, finish sooner than the same runs
one after another on two threads (`benchmarks/train_bench.py` measures both). Runs are rarely equally
long (chapter 06 trains the improved CNN beside a short base run), so each worker takes the cores the
others leave: before every training batch a run sets its threads to the cores divided by the runs still
in progress, and a run left alone finishes on every core. A run that is already finished is read back,
never retrained; a failed run raises in the caller with its settings named.

Every pool of worker processes in rawtag (synthesis, `prepare`'s decoders, training runs, chapter copies)
is a `worker_pool`, fed through `finished`: a killed command leaves no worker behind, and an interrupted one
stops at once instead of waiting for its queued work.

Chapter: 04_sweep
"""
from __future__ import annotations

import ctypes
import functools
import itertools
import multiprocessing
import os
import signal
import sys
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Callable, Iterable, Iterator

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


_interrupted_by: int | None = None  # the pid whose SIGTERM handler ran (see `sigterm_is_interrupt`)
_starting_workers = False  # True while `finished` submits work, which may start a pool's workers


def _terminated(command: int, signum, frame):
    global _interrupted_by
    if os.getpid() != command:  # a worker forked a moment ago, before `die_with_parent` reset this handler
        os._exit(128 + signum)
    _interrupted_by = command
    if not _starting_workers:  # else `finished` raises it once the worker it was starting is registered
        raise KeyboardInterrupt


@contextmanager
def sigterm_is_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM is Ctrl-C: it raises KeyboardInterrupt, so that the command stops its
    workers and says how to resume. While `finished` submits work the interruption waits: a pool starting a
    worker would lose track of it (the exit would then wait for it for ever), and Python drops an exception
    raised in a fork hook.

    Chapter: 01_data
    """
    global _interrupted_by
    previous = signal.signal(signal.SIGTERM, functools.partial(_terminated, os.getpid()))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _interrupted_by = None


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


def _start_in_pool(parent: int, initializer: Callable | None, initargs: tuple) -> None:
    die_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)


@contextmanager
def worker_pool(workers: int, initializer: Callable | None = None, initargs: tuple = (), spawn: bool = False
                ) -> Iterator[ProcessPoolExecutor]:
    """A pool of `workers` processes (forked, or started fresh with `spawn`, which threads need), each of
    which dies with this process and runs `initializer(*initargs)` first. Leaving the block normally waits
    for the submitted work; leaving it with an exception (Ctrl-C, SIGTERM, a failed job) kills the workers
    and returns at once: a pool left to shut down by itself would first finish its queued work, and
    joins a worker that was still starting when it was told to stop.

    Chapter: 01_data
    """
    context = multiprocessing.get_context("spawn" if spawn else None)
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_in_pool,
                               initargs=(os.getpid(), initializer, initargs))
    try:
        yield pool
    except BaseException:
        for process in list((pool._processes or {}).values()):  # the pool offers no public way to stop them
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def finished(pool: ProcessPoolExecutor, job: Callable, arguments: Iterable[tuple], in_flight: int
             ) -> Iterator[tuple[int, Future]]:
    """Run `job(*arguments[i])` for each i on `pool`, at most `in_flight` at a time (bounded memory), and
    yield (i, its finished future) as each finishes. Waits at most half a second at a time: the operating
    system may hand a signal (Ctrl-C, SIGTERM) to one of the pool's threads, and Python runs its handler
    only when the main thread wakes. Raises KeyboardInterrupt after a SIGTERM (see `sigterm_is_interrupt`).

    Chapter: 01_data
    """
    global _starting_workers
    pending, queue = {}, enumerate(arguments)
    while True:
        _starting_workers = True
        try:
            for i, args in itertools.islice(queue, max(0, in_flight - len(pending))):
                pending[pool.submit(job, *args)] = i
        finally:
            _starting_workers = False
        if _interrupted_by == os.getpid():  # a SIGTERM held while submitting
            raise KeyboardInterrupt
        if not pending:
            return
        done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
        for future in done:
            yield pending.pop(future), future


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
        running = multiprocessing.get_context("spawn").Value("i", 0)
        with worker_pool(processes, _start_worker, (running, cores), spawn=True) as pool, \
                tqdm(total=len(todo), desc=f"training {len(todo)} runs, {processes} at a time", unit="run",
                     disable=not progress) as bar:  # spawned: threads and fork do not mix
            for k, future in finished(pool, _train_one, [(state, *jobs[i]) for i in todo], len(todo)):
                try:
                    future.result()
                except Exception as e:
                    raise RuntimeError(f"training {jobs[todo[k]][0]} with {jobs[todo[k]][1]} failed: {e}") from e
                bar.update()
    return [workspace.run_dir(model, **settings) for model, settings in jobs]

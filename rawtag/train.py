"""Training: `fit` a registered model on a prepared set, resumable, with a history to plot.

Taught in chapter 03 (base CNN; `train_epoch` is the loop it shows) and chapter 06 (improvements). A run
folder (its file names are in `rawtag.runs`) holds:

- `config.json`: the resolved settings (model, parameters, protocol, data, tags, normalization);
- `history.json`: per epoch (training loss, validation loss, ROC-AUC, PR-AUC, learning rate, clips/s)
  and the training loss every `log_every` iterations (the paper's Fig. 3 uses 300);
- `checkpoints/last.pt` (model, optimizer, scheduler, RNG, history; rewritten every epoch) and
  `checkpoints/best.pt` (the model with the best validation ROC-AUC);
- `results.json`: validation and test ROC-AUC / PR-AUC of the best checkpoint, written last, and
  `predictions.npz`: its logits and labels for both splits (chapter 05 ranks clips from it).

An interrupted run started again with the same settings resumes from the last finished epoch and ends,
on CPU, exactly where an uninterrupted run would. All checkpoints load with `weights_only=True`
(`rawtag.checkpoints`). Using a trained run (evaluate, tag) is `rawtag.inference`.

Chapter: 03_base_cnn
"""
from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import distributed, runs
from .atomic import locked, replacing, write_text
from .checkpoints import CheckpointError, load_checkpoint, load_weights, save_checkpoint
from .data.audio import check_rate
from .data.batches import Batches
from .data.normalize import MODES, fit_minmax
from .data.prepare import PreparedSet
from .devices import bf16_is_native, pick_device
from .inference import autocast, predict
from .metrics import tag_scores
from .models import build_model, protocol
from .profiles import PRECISIONS


@dataclass
class TrainConfig:
    """Everything that decides a run. `None` means "the model's paper protocol" (see `models.protocol`).

    Chapter: 03_base_cnn
    """

    model: str = "base"
    model_params: dict = field(default_factory=dict)
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    lr_factor: float | None = None  # divide the learning rate by 1/lr_factor on a validation-AUC plateau
    lr_patience: int | None = None  # ... that lasted more than this many epochs
    seed: int = 0
    normalization: str = "dataset"
    max_train_clips: int | None = None
    max_eval_clips: int | None = None
    log_every: int = 300
    device: str = "auto"
    precision: str = "fp32"  # "fp32" (TF32 matmuls allowed on GPUs) or "bf16" (bfloat16 autocast)

    def resolved(self) -> "TrainConfig":
        base = protocol(self.model)
        out = TrainConfig(**asdict(self))
        out.epochs = base["epochs"] if self.epochs is None else self.epochs
        out.batch_size = base["batch_size"] if self.batch_size is None else self.batch_size
        out.lr = base["lr"] if self.lr is None else self.lr
        if self.lr_factor is None and self.lr_patience is None:
            out.lr_factor, out.lr_patience = base["lr_factor"], base["lr_patience"]
        if out.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {out.epochs}")
        if out.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {out.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if out.normalization not in MODES:
            raise ValueError(f"unknown normalization {out.normalization!r}; choose one of {', '.join(MODES)}")
        return out


def _write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=1))


def _json_or_none(path: Path) -> dict | None:
    """The JSON object in `path`; None if it is missing, unreadable or not an object (damaged)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _check_splits(data: PreparedSet) -> None:
    """Training needs train and valid clips: say which split is empty, and why, before anything is written."""
    for split in ("train", "valid"):
        if len(data.rows(split)):
            continue
        skipped = sum(1 for s in data.manifest.get("skipped", []) if s.get("split") == split)
        why = (f"all {skipped} of its clips were skipped as unreadable; manifest.json lists why" if skipped else
               f"the annotations have no clip with one of its top-{data.manifest['params']['top_k']} tags in "
               f"the folders of this split (scheme {data.manifest['params']['scheme']!r})")
        raise ValueError(f"{data.path}: the {split} split has no clips ({why}); training needs train and valid "
                         f"clips: prepare a set that has both")


def _claim_run(out: Path, run_config: dict, force: bool) -> bool:
    """Check that `out` may receive this run; True when an old run there must be replaced (`force`).

    Refused without `force`: a run with other settings, a run trained for more epochs than asked (its
    records would be rewritten to say fewer), checkpoints without config.json, and a folder of other files.
    """
    if not out.exists():
        return False
    if not out.is_dir():
        raise ValueError(f"{out} is a file, not a run folder; choose another --out")
    config = _json_or_none(out / runs.CONFIG)
    last = out / runs.LAST
    problem = None
    if config is None and last.exists():
        problem = "checkpoints but no readable config.json (its settings are unknown)"
    elif config is not None and last.exists():
        new = json.loads(json.dumps(run_config))
        def flat(c):  # the settings that must agree (any number of epochs may extend a run)
            return {**{f"train.{k}": v for k, v in c.get("train", {}).items() if k != "epochs"},
                    **{k: v for k, v in c.items() if k != "train"}}

        old = flat(config)
        differ = sorted(k for k in set(old) | set(flat(new)) if old.get(k) != flat(new).get(k)
                        and not (k == "data" and _same_folder(old.get(k), new[k])))
        history = _json_or_none(out / runs.HISTORY) or {}
        trained = len(history.get("epochs", []))
        if differ:
            problem = (f"a run with other settings ({', '.join(differ[:5])}); to keep it, rerun with its own "
                       f"settings ({out / runs.CONFIG}) to resume or extend it")
        elif trained > new["train"]["epochs"]:
            problem = (f"a run trained for {trained} epochs, and --epochs {new['train']['epochs']} would rewrite "
                       f"its records to fewer (pass --epochs {trained} or more to keep it)")
        if problem and not force:
            raise ValueError(f"{out} holds {problem}; or choose another --out (--force would delete its {trained} "
                             f"trained epoch(s))")
    elif config is None:
        others = sorted(e.name for e in out.iterdir() if e.name not in runs.RUN_FILES)
        if others:
            shown = ", ".join(others[:4]) + (f" and {len(others) - 4} more" if len(others) > 4 else "")
            if not force:
                raise ValueError(f"{out} is not a run folder: it holds {shown} and no config.json; choose a new "
                                 f"or empty --out, or pass --force to write the run into it")
            return False
    if problem is None:
        return False
    if not force:
        raise ValueError(f"{out} holds {problem}; choose another --out, or pass --force to replace it")
    return True


def _same_folder(a, b) -> bool:
    """True when the paths `a` and `b` name one folder (a run records its data resolved; older runs as typed)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, TypeError):
        return False


def _clear_run(out: Path) -> None:
    """Remove a run's files (results first, so a kill midway leaves no finished-looking run)."""
    import shutil

    for name in (runs.RESULTS, runs.PREDICTIONS, runs.HISTORY, runs.CONFIG):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / runs.CHECKPOINTS, ignore_errors=True)


def _bce(logits, labels) -> float:
    return float(nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(logits),
                                                                torch.from_numpy(labels)))


def fit(data: str | os.PathLike | PreparedSet, out: str | os.PathLike, config: TrainConfig | None = None,
        progress: bool = True, force: bool = False, threads: Callable[[], int] | None = None) -> dict:
    """Train `config.model` on the prepared set `data`, writing the run folder `out`; returns the results.

    Adam with BCEWithLogitsLoss on logits pooled over sub-clips; validation loss and AUC every epoch;
    the best-by-validation-AUC model is evaluated on validation and test at the end. Under `torchrun`,
    each process takes its share of every batch (see `rawtag.distributed`). `out` must be new, empty, or
    this run (same settings, no more epochs than asked), and is locked while the run writes it (a second
    `fit` into it is refused); `force` replaces another run there. `threads`, if given, is asked before
    every training batch and every validation how many CPU threads to use (`rawtag.concurrent.train_all`
    gives a run the cores that finished runs left).

    Chapter: 03_base_cnn
    """
    device = pick_device((config or TrainConfig()).device)
    ctx = distributed.from_environment(device)
    try:
        with locked(out, "train") if ctx.main else nullcontext():  # one run at a time writes a run folder
            return _fit(data, out, config, progress, ctx, distributed.device_of(ctx, device), force, threads)
    finally:
        distributed.close(ctx)


@dataclass
class _Progress:
    """What a run has done so far: saved in last.pt every epoch, restored on resume."""

    history: dict = field(default_factory=lambda: {"epochs": [], "iterations": []})
    best_auc: float = -1.0
    iteration: int = 0
    next_epoch: int = 0


def _fit(data, out, config, progress, ctx: distributed.Context, device: torch.device, force: bool = False,
         threads: Callable[[], int] | None = None) -> dict:
    """`fit` in steps: claim the run folder, build, resume, then per epoch train, validate and save."""
    data = data if isinstance(data, PreparedSet) else PreparedSet(data)
    cfg, out = (config or TrainConfig()).resolved(), Path(out)
    if cfg.precision == "bf16" and not bf16_is_native(device):
        hardware = (f"this CPU ({torch.backends.cpu.get_cpu_capability()}) has no AVX512-BF16 or AMX"
                    if device.type == "cpu" else f"this {device.type} device has no bfloat16 support")
        warnings.warn(f"precision='bf16': {hardware}, so bfloat16 is emulated, far slower than float32 (the "
                      f"improved CNN on an AVX2 CPU: about 35x); use precision='fp32' here", RuntimeWarning,
                      stacklevel=3)
    _check_splits(data)
    progress = progress and ctx.main
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True

    params = {**cfg.model_params, "n_tags": len(data.tags)}
    run_config = {"train": asdict(cfg), "model_params": params, "data": str(data.path.resolve()),  # from anywhere
                  "tags": data.tags,
                  "sample_rate": data.sample_rate,
                  "normalization_range": list(fit_minmax(data.rowstats, data.rows("train")))}
    replace = _claim_run(out, run_config, force)  # refuses another run, fewer epochs, a folder of other files
    distributed.barrier(ctx)  # every process has compared before rank 0 writes
    if ctx.main and replace:
        _clear_run(out)
    (out / runs.CHECKPOINTS).mkdir(parents=True, exist_ok=True)

    torch.manual_seed(cfg.seed)
    core = build_model(cfg.model, **params).to(device)
    check_rate(core, data.sample_rate, str(data.path))
    if ctx.active:  # batch norm over the whole batch, as in one process (before the optimizer takes the parameters)
        core = distributed.sync_batch_norm(core)
    # fused: one kernel for all parameters (CPU and CUDA; 0.3 ms of a 10 ms base-CNN step on 2 CPU cores)
    optimizer = torch.optim.Adam(core.parameters(), lr=cfg.lr, fused=device.type in ("cpu", "cuda"))
    scheduler = (torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=cfg.lr_factor,
                                                            patience=cfg.lr_patience)
                 if cfg.lr_factor else None)
    state = _Progress()
    if (out / runs.LAST).exists() and not replace:
        state = _resume(out, core, optimizer, scheduler, device, cfg.epochs, progress)
    if ctx.main:  # after the checks above: a refused command leaves config.json as it was
        _write_json(out / runs.CONFIG, run_config)

    model = (torch.nn.parallel.DistributedDataParallel(core, device_ids=[device] if device.type == "cuda" else None)
             if ctx.active else core)
    common = dict(device=device, normalization=cfg.normalization, batch_size=cfg.batch_size,
                  shard=(ctx.rank, ctx.world), layout=core.INPUT, recycle=True)
    # sample-level models under the segment protocol train on one random segment per clip (chapter 07)
    train = Batches(data, "train", shuffle=True, seed=cfg.seed, max_clips=cfg.max_train_clips,
                    crop=getattr(core, "train_crop", None), **common)
    valid = Batches(data, "valid", max_clips=cfg.max_eval_clips, **common)

    last_valid = None  # the last epoch's validation predictions: the final scores reuse them if it was the best
    for epoch in range(state.next_epoch, cfg.epochs):
        started = time.perf_counter()
        train_loss = train_epoch(model, train, optimizer, epoch, cfg, ctx, state, progress, threads)
        seconds = time.perf_counter() - started
        _use_threads(threads)
        last_valid = distributed.gather(ctx, *predict(core, valid, cfg.precision, progress, desc="validate"))
        logits, labels, _ = last_valid
        _check_finite(float(np.abs(logits).max(initial=0.0)), "the validation logits' largest value", epoch,
                      optimizer)
        scores = tag_scores(labels, logits, data.tags)
        if scheduler is not None:
            scheduler.step(scores.roc_auc)
        record = {"epoch": epoch + 1, "train_loss": train_loss, "valid_loss": _bce(logits, labels),
                  "valid_roc_auc": scores.roc_auc, "valid_pr_auc": scores.pr_auc,
                  "lr": optimizer.param_groups[0]["lr"], "train_seconds": seconds,
                  "train_clips_per_s": len(train.rows) / seconds}
        state.history["epochs"].append(record)
        _save_epoch(out, core, optimizer, scheduler, device, state, epoch, scores.roc_auc, ctx)
        if progress:
            print(f"epoch {epoch + 1:>3}/{cfg.epochs}  train loss {train_loss:.4f}  "
                  f"valid loss {record['valid_loss']:.4f}  valid ROC-AUC {scores.roc_auc:.4f}  "
                  f"PR-AUC {scores.pr_auc:.4f}  {record['train_clips_per_s']:.1f} clips/s")

    finished = _json_or_none(out / runs.RESULTS)
    if finished is not None and finished.get("epochs") == cfg.epochs:
        return finished
    return _finish(data, out, core, cfg, params, state, len(train.rows), common, ctx, device, progress, last_valid)


def _use_threads(threads: Callable[[], int] | None) -> None:
    """Set torch's CPU threads to what `threads()` says now (a no-op without `threads`, or when unchanged)."""
    if threads is not None and (n := threads()) != torch.get_num_threads():
        torch.set_num_threads(n)


def train_epoch(model: nn.Module, train: Batches, optimizer, epoch: int, cfg: TrainConfig,
                ctx: distributed.Context, state: _Progress, progress: bool,
                threads: Callable[[], int] | None = None) -> float:
    """One pass over the training split: forward, binary cross-entropy on the logits, backward, Adam step,
    batch after batch; returns the epoch's mean training loss. Every `cfg.log_every` iterations the mean
    loss since the last entry goes into `state.history["iterations"]` (the paper's Fig. 3).

    Chapter: 03_base_cnn
    """
    from .progress import tqdm  # bars on a terminal or in Jupyter; in a log file only the per-epoch lines

    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    train.set_epoch(epoch)  # the epoch's shuffle (and crops) are seeded by (seed, epoch): a resume sees the same
    losses, window = [], []
    bar = tqdm(train, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, disable=not progress)
    for batch in bar:
        _use_threads(threads)
        with autocast(train.device, cfg.precision):
            loss = loss_fn(model(batch.x).float(), batch.y)
        loss = loss * distributed.share(ctx, len(batch.y))  # uneven shares: the whole batch's gradient
        value = loss.item()
        _check_finite(value, f"the training loss at iteration {state.iteration + 1}", epoch, optimizer)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(value)
        window.append(value)
        state.iteration += 1
        if state.iteration % cfg.log_every == 0:
            state.history["iterations"].append({"iteration": state.iteration, "epoch": epoch + 1,
                                                "loss": distributed.mean(ctx, float(np.mean(window)))})
            window = []
        bar.set_postfix(loss=f"{value:.4f}")
    return distributed.mean(ctx, float(np.mean(losses)))


def _check_finite(value: float, what: str, epoch: int, optimizer) -> None:
    """Stop a diverging run at its first non-finite loss, naming the learning rate (no epoch is saved from it)."""
    if not math.isfinite(value):
        lr = optimizer.param_groups[0]["lr"]
        raise ValueError(f"training diverged: {what} of epoch {epoch + 1} is {value} with learning rate {lr:g}; "
                         f"train with a lower --lr (e.g. {lr / 10:g})")


def _resume(out: Path, core, optimizer, scheduler, device, epochs: int, progress: bool) -> _Progress:
    """Load last.pt into the model, optimizer, scheduler and random state; a damaged file is one line."""
    last_path = out / runs.LAST
    fix = f"delete {last_path} to train this run from the start, or pass --force to replace the run"
    saved = load_checkpoint(last_path, device, fix)
    load_weights(core, saved, last_path, fix)
    try:
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"])
        if device.type == "cuda" and saved.get("cuda_rng"):
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        state = _Progress(saved["history"], saved["best_auc"], saved["iteration"], saved["epoch"] + 1)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{last_path} is incomplete or of another version ({type(e).__name__}: "
                              f"{' '.join(str(e).split())[:120]}); {fix}") from None
    if state.next_epoch > epochs:  # never rewrite the records of a longer run to say fewer epochs
        raise ValueError(f"{out} holds a run trained for {state.next_epoch} epochs; --epochs {epochs} is "
                         f"fewer: pass --epochs {state.next_epoch} or more, or choose another --out")
    if progress and state.next_epoch < epochs:
        print(f"{out}: resuming after epoch {state.next_epoch} of {epochs}")
    return state


def _save_epoch(out: Path, core, optimizer, scheduler, device, state: _Progress, epoch: int, auc: float,
                ctx: distributed.Context) -> None:
    """best.pt when validation AUC improved, then last.pt and history.json (rank 0 writes)."""
    # NaN when every tag is single-class in validation: no epoch can be chosen on it, so best.pt follows
    # the last epoch until a defined AUC appears (and the end of `fit` says so)
    improved = auc > state.best_auc or (state.best_auc < 0 and np.isnan(auc))
    state.best_auc = max(state.best_auc, auc)
    if ctx.main:
        if improved:
            save_checkpoint({"model": core.state_dict(), "epoch": epoch + 1}, out / runs.BEST)
        save_checkpoint({"model": core.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict() if scheduler is not None else {},
                         "rng": torch.get_rng_state(),
                         "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
                         "history": state.history, "best_auc": state.best_auc,
                         "iteration": state.iteration, "epoch": epoch}, out / runs.LAST)
        _write_json(out / runs.HISTORY, state.history)
    distributed.barrier(ctx)


def _finish(data: PreparedSet, out: Path, core, cfg: TrainConfig, params: dict, state: _Progress,
            train_clips: int, common: dict, ctx: distributed.Context, device, progress: bool,
            last_valid: tuple | None) -> dict:
    """Score the best checkpoint on validation and test; write predictions.npz, then results.json last.
    `last_valid` (the last epoch's validation predictions, if this process trained it) stands in for a
    second validation pass when the last epoch is the best: the same weights on the same clips."""
    best_path = out / runs.BEST
    fix = f"delete {best_path} and {out / runs.LAST} and rerun the same command to train again"
    best = load_checkpoint(best_path, device, fix)
    load_weights(core, best, best_path, fix)
    last = state.history["epochs"][-1]
    results = {"model": cfg.model, "model_params": params, "epochs": cfg.epochs, "best_epoch": best["epoch"],
               "precision": cfg.precision, "device": str(device), "train_clips": train_clips,
               # the best epoch is chosen on validation, so its validation AUC is optimistic; the last is not
               "valid_last_epoch": {"epoch": last["epoch"], "roc_auc": last["valid_roc_auc"],
                                    "pr_auc": last["valid_pr_auc"]}}
    arrays = {}
    for split in ("valid", "test"):
        batches = Batches(data, split, max_clips=cfg.max_eval_clips, **common)
        if len(batches.rows) == 0:
            results[split] = None
            continue
        if split == "valid" and last_valid is not None and best["epoch"] == last["epoch"]:
            logits, labels, rows = last_valid
        else:
            logits, labels, rows = distributed.gather(ctx, *predict(core, batches, cfg.precision, progress,
                                                                    desc=split))
        scores = tag_scores(labels, logits, data.tags)
        results[split] = {"roc_auc": scores.roc_auc, "pr_auc": scores.pr_auc, "clips": len(rows),
                          "excluded_tags": scores.excluded}
        arrays.update({f"{split}_logits": logits, f"{split}_labels": labels, f"{split}_rows": rows})
        if progress and scores.excluded:
            print(f"{split}: {len(scores.excluded)} tag(s) have a single class in the {len(rows)} clips and "
                  f"are left out of the macro AUC (see {runs.RESULTS})")
    if progress and results["valid"] and np.isnan(results["valid"]["roc_auc"]):
        print(f"valid: ROC-AUC is undefined: every tag has a single class in the {results['valid']['clips']} "
              f"validation clips, so no epoch could be chosen on validation; best.pt is the model of epoch "
              f"{best['epoch']}, the last one. Prepare a larger set for a validation split that can rank clips.")
    if ctx.main:
        with replacing(out / runs.PREDICTIONS) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        _write_json(out / runs.RESULTS, results)
    distributed.barrier(ctx)
    return results

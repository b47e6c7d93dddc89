"""Training and evaluation: `fit` a registered model on a prepared set, resumable, with a history to plot.

Taught in chapter 03 (base CNN) and chapter 06 (improvements). A run folder holds:

- `config.json`: the resolved settings (model, parameters, protocol, data, tags, normalization);
- `history.json`: per epoch (training loss, validation loss, ROC-AUC, PR-AUC, learning rate, clips/s)
  and the training loss every `log_every` iterations (the paper's Fig. 3 uses 300);
- `checkpoints/last.pt` (model, optimizer, scheduler, RNG, history; rewritten every epoch) and
  `checkpoints/best.pt` (the model with the best validation ROC-AUC);
- `results.json`: validation and test ROC-AUC / PR-AUC of the best checkpoint, written last, and
  `predictions.npz`: its logits and labels for both splits (chapter 05 ranks clips from it).

An interrupted run started again with the same settings resumes from the last finished epoch and ends,
on CPU, exactly where an uninterrupted run would. All checkpoints load with `weights_only=True`.
"""
from __future__ import annotations

import errno
import json
import os
import pickle
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import distributed
from .atomic import RESUME, DiskFull, free_bytes, human, replacing, write_text
from .data import audio
from .data.audio import check_rate
from .data.batches import Batches
from .data.normalize import MODES, affine, fit_minmax, minmax_affine
from .data.prepare import PreparedSet
from .metrics import tag_scores
from .models import build_model, protocol
from .profiles import PRECISIONS

RESULTS = "results.json"


@dataclass
class TrainConfig:
    """Everything that decides a run. `None` means "the model's paper protocol" (see `models.protocol`)."""

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


DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def _supported_devices() -> str:
    have = ["cpu"]
    if torch.cuda.is_available():
        have.append("cuda" if torch.cuda.device_count() == 1 else f"cuda:0-{torch.cuda.device_count() - 1}")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        have.append("mps")
    return f"this torch {torch.__version__} supports {', '.join(have)} here"


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """cuda if present, else mps, else cpu; or the device named, checked here (the one place that does):
    an unknown or unavailable device is a one-line ValueError listing the choices and what this torch has."""
    if isinstance(device, torch.device):
        device = str(device)
    name = str(device).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind, _, index = name.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and not index.isdigit()) or (index and kind != "cuda"):
        raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)} ({_supported_devices()})")
    if kind == "cuda":
        if not torch.cuda.is_available():
            build = "has no CUDA support" if torch.version.cuda is None else "finds no CUDA GPU"
            raise ValueError(f"device {device!r} is not available: this torch {torch.__version__} {build}; "
                             f"use --device cpu or auto")
        if index and int(index) >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} is not available: {torch.cuda.device_count()} CUDA GPU(s) "
                             f"visible ({_supported_devices()})")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r} is not available ({_supported_devices()}); use --device cpu or auto")
    return torch.device(name)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file, the reason and the fix."""


def load_checkpoint(path: Path, device, fix: str) -> dict:
    """`torch.load(path, weights_only=True)` with a one-line CheckpointError for a missing, empty, truncated,
    corrupt or unsafe file. `weights_only` is never relaxed: a file that needs it is refused."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; {fix}")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): its write was cut short; {fix}")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error below says it all
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as e:
        if "global" in str(e).lower():  # a pickle naming a function or class: what a crafted file does
            raise CheckpointError(f"{path} holds objects other than tensors and plain values and was refused "
                                  f"(checkpoints are loaded as weights only, so a file can run no code); "
                                  f"{fix}") from None
        raise CheckpointError(f"{path} is truncated or corrupt ({size:,} bytes, not a complete PyTorch "
                              f"checkpoint); {fix}") from None
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception:  # EOFError, RuntimeError (zip), IndexError, OSError [Errno 22], ...: all a bad file
        raise CheckpointError(f"{path} is truncated or corrupt ({size:,} bytes, not a complete PyTorch "
                              f"checkpoint); {fix}") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise CheckpointError(f"{path} is not a rawtag checkpoint (no model weights in it); {fix}")
    return state


def load_weights(model: nn.Module, state: dict, path: Path, fix: str) -> None:
    """model.load_state_dict, with a one-line CheckpointError when the weights are of another model's shape."""
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        lines = [line.strip() for line in str(e).splitlines()[1:] if line.strip()]
        raise CheckpointError(f"{path} holds weights of another model shape than config.json describes "
                              f"({lines[0] if lines else 'keys differ'}); {fix}") from None


def _save(obj, path: Path) -> None:
    with replacing(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as e:  # torch reports a failed write as "enforce fail at inline_container.cc"
            if "inline_container" not in str(e) and "write" not in str(e).lower():
                raise
            raise DiskFull(errno.ENOSPC, f"cannot write {path}: the write failed ({human(free_bytes(path))} free "
                                         f"on its disk: full, or a file-size limit?); {RESUME}") from e


def _write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=1))


def _json_or_none(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


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


#: What a run folder holds; `--force` removes these, and only these, to replace a run.
RUN_FILES = ("config.json", "history.json", RESULTS, "predictions.npz", "checkpoints")


def _claim_run(out: Path, run_config: dict, force: bool) -> bool:
    """Check that `out` may receive this run; True when an old run there must be replaced (`force`).

    Refused without `force`: a run with other settings, a run trained for more epochs than asked (its
    records would be rewritten to say fewer), checkpoints without config.json, and a folder of other files.
    """
    if not out.exists():
        return False
    if not out.is_dir():
        raise ValueError(f"{out} is a file, not a run folder; choose another --out")
    config = _json_or_none(out / "config.json")
    last = out / "checkpoints" / "last.pt"
    problem = None
    if config is None and last.exists():
        problem = "checkpoints but no readable config.json (its settings are unknown)"
    elif config is not None and last.exists():
        new = json.loads(json.dumps(run_config))
        flat = lambda c: {**{f"train.{k}": v for k, v in c.get("train", {}).items() if k != "epochs"},  # noqa: E731
                          **{k: v for k, v in c.items() if k != "train"}}
        differ = sorted(k for k in set(flat(config)) | set(flat(new)) if flat(config).get(k) != flat(new).get(k))
        history = _json_or_none(out / "history.json") or {}
        trained = len(history.get("epochs", []))
        if differ:
            problem = f"a run with other settings ({', '.join(differ[:5])})"
        elif trained > new["train"]["epochs"]:
            problem = (f"a run trained for {trained} epochs, and --epochs {new['train']['epochs']} would rewrite "
                       f"its records to fewer (pass --epochs {trained} or more to keep it)")
    elif config is None:
        others = sorted(e.name for e in out.iterdir() if e.name not in RUN_FILES)
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


def _clear_run(out: Path) -> None:
    """Remove a run's files (results first, so a kill midway leaves no finished-looking run)."""
    import shutil

    for name in (RESULTS, "predictions.npz", "history.json", "config.json"):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)


def autocast(device: torch.device, precision: str):
    """The autocast context for `precision`: bfloat16 for "bf16", a no-op for "fp32". Chapter 06."""
    return torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16")


def predict(model: nn.Module, batches: Batches, precision: str = "fp32", progress: bool = False,
            desc: str = "eval"):
    """Logits, labels and rows of every clip in `batches`, as numpy arrays."""
    from .progress import tqdm

    model.eval()
    logits, labels, rows = [], [], []
    device = batches.device
    with torch.no_grad(), autocast(device, precision):
        for batch in tqdm(batches, desc=desc, leave=False, disable=not progress):
            logits.append(model(batch.x).float().cpu().numpy())
            labels.append(batch.y.cpu().numpy())
            rows.append(batch.rows)
    return np.concatenate(logits), np.concatenate(labels), np.concatenate(rows)


def _bce(logits, labels) -> float:
    return float(nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(logits),
                                                                torch.from_numpy(labels)))


def fit(data: str | os.PathLike | PreparedSet, out: str | os.PathLike, config: TrainConfig | None = None,
        progress: bool = True, force: bool = False) -> dict:
    """Train `config.model` on the prepared set `data`, writing the run folder `out`; returns the results.

    Adam with BCEWithLogitsLoss on logits pooled over sub-clips; validation loss and AUC every epoch;
    the best-by-validation-AUC model is evaluated on validation and test at the end. Chapter 03. Under
    `torchrun`, each process takes its share of every batch (see `rawtag.distributed`). `out` must be new,
    empty, or this run (same settings, no more epochs than asked); `force` replaces another run there.
    """
    device = pick_device((config or TrainConfig()).device)
    ctx = distributed.from_environment(device)
    try:
        return _fit(data, out, config, progress, ctx, distributed.device_of(ctx, device), force)
    finally:
        distributed.close(ctx)


def _fit(data, out, config, progress, ctx: distributed.Context, device: torch.device, force: bool = False) -> dict:
    from .progress import tqdm  # bars on a terminal or in Jupyter; in a log file only the per-epoch lines

    data = data if isinstance(data, PreparedSet) else PreparedSet(data)
    cfg = (config or TrainConfig()).resolved()
    out = Path(out)
    _check_splits(data)
    progress = progress and ctx.main
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True

    params = {**cfg.model_params, "n_tags": len(data.tags)}
    run_config = {"train": asdict(cfg), "model_params": params, "data": str(data.path), "tags": data.tags,
                  "sample_rate": data.sample_rate,
                  "normalization_range": list(fit_minmax(data.rowstats, data.rows("train")))}
    config_path = out / "config.json"
    last_path = out / "checkpoints" / "last.pt"
    replace = _claim_run(out, run_config, force)  # refuses another run, fewer epochs, a folder of other files
    resume = last_path.exists() and not replace
    distributed.barrier(ctx)  # every process has compared before rank 0 writes
    if ctx.main and replace:
        _clear_run(out)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)

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
    loss_fn = nn.BCEWithLogitsLoss()
    history = {"epochs": [], "iterations": []}
    start_epoch, best_auc, iteration = 0, -1.0, 0
    if resume:
        fix = f"delete {last_path} to train this run from the start, or pass --force to replace the run"
        state = load_checkpoint(last_path, device, fix)
        load_weights(core, state, last_path, fix)
        try:
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["rng"])
            if device.type == "cuda" and state.get("cuda_rng"):
                torch.cuda.set_rng_state_all(state["cuda_rng"])
            history, best_auc, iteration = state["history"], state["best_auc"], state["iteration"]
            start_epoch = state["epoch"] + 1
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{last_path} is incomplete or of another version ({type(e).__name__}: "
                                  f"{' '.join(str(e).split())[:120]}); {fix}") from None
        if start_epoch > cfg.epochs:  # never rewrite the records of a longer run to say fewer epochs
            raise ValueError(f"{out} holds a run trained for {start_epoch} epochs; --epochs {cfg.epochs} is "
                             f"fewer: pass --epochs {start_epoch} or more, or choose another --out")
        if progress and start_epoch < cfg.epochs:
            print(f"{out}: resuming after epoch {start_epoch} of {cfg.epochs}")
    if ctx.main:  # after the checks above: a refused command leaves config.json as it was
        _write_json(config_path, run_config)

    model = (torch.nn.parallel.DistributedDataParallel(core, device_ids=[device] if device.type == "cuda" else None)
             if ctx.active else core)
    common = dict(device=device, normalization=cfg.normalization, batch_size=cfg.batch_size,
                  shard=(ctx.rank, ctx.world), layout=core.INPUT)
    # sample-level models under their authors' protocol train on one random segment per clip (chapter 07)
    train = Batches(data, "train", shuffle=True, seed=cfg.seed, max_clips=cfg.max_train_clips,
                    crop=getattr(core, "train_crop", None), **common)
    valid = Batches(data, "valid", max_clips=cfg.max_eval_clips, **common)
    if len(train.rows) == 0 or len(valid.rows) == 0:
        raise ValueError(f"{data.path}: the train and valid splits must both have clips "
                         f"(train {len(train.rows)}, valid {len(valid.rows)})")

    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        train.set_epoch(epoch)
        started, losses, window = time.perf_counter(), [], []
        bar = tqdm(train, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, disable=not progress)
        for batch in bar:
            with autocast(device, cfg.precision):
                loss = loss_fn(model(batch.x).float(), batch.y)
            loss = loss * distributed.share(ctx, len(batch.y))  # uneven shares: the whole batch's gradient
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = loss.item()
            losses.append(value)
            window.append(value)
            iteration += 1
            if iteration % cfg.log_every == 0:
                history["iterations"].append({"iteration": iteration, "epoch": epoch + 1,
                                              "loss": distributed.mean(ctx, float(np.mean(window)))})
                window = []
            bar.set_postfix(loss=f"{value:.4f}")
        seconds = time.perf_counter() - started
        logits, labels, _ = distributed.gather(ctx, *predict(core, valid, cfg.precision, progress,
                                                               desc="validate"))
        scores = tag_scores(labels, logits, data.tags)
        if scheduler is not None:
            scheduler.step(scores.roc_auc)
        record = {"epoch": epoch + 1, "train_loss": distributed.mean(ctx, float(np.mean(losses))),
                  "valid_loss": _bce(logits, labels),
                  "valid_roc_auc": scores.roc_auc, "valid_pr_auc": scores.pr_auc,
                  "lr": optimizer.param_groups[0]["lr"], "train_seconds": seconds,
                  "train_clips_per_s": len(train.rows) / seconds}
        history["epochs"].append(record)
        # NaN when every tag is single-class in validation: no epoch can be chosen on it, so best.pt follows
        # the last epoch until a defined AUC appears (and the end of `fit` says so)
        improved = scores.roc_auc > best_auc or (best_auc < 0 and np.isnan(scores.roc_auc))
        best_auc = max(best_auc, scores.roc_auc)
        if ctx.main:
            if improved:
                _save({"model": core.state_dict(), "epoch": epoch + 1}, out / "checkpoints" / "best.pt")
            _save({"model": core.state_dict(), "optimizer": optimizer.state_dict(),
                   "scheduler": scheduler.state_dict() if scheduler is not None else {},
                   "rng": torch.get_rng_state(),
                   "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
                   "history": history, "best_auc": best_auc,
                   "iteration": iteration, "epoch": epoch}, last_path)
            _write_json(out / "history.json", history)
        distributed.barrier(ctx)
        if progress:
            print(f"epoch {epoch + 1:>3}/{cfg.epochs}  train loss {record['train_loss']:.4f}  "
                  f"valid loss {record['valid_loss']:.4f}  valid ROC-AUC {scores.roc_auc:.4f}  "
                  f"PR-AUC {scores.pr_auc:.4f}  {record['train_clips_per_s']:.1f} clips/s")

    finished = _json_or_none(out / RESULTS)
    if finished is not None and finished.get("epochs") == cfg.epochs:
        return finished
    best_path = out / "checkpoints" / "best.pt"
    fix = f"delete {best_path} and {last_path} and rerun the same command to train again"
    best = load_checkpoint(best_path, device, fix)
    load_weights(core, best, best_path, fix)
    last = history["epochs"][-1]
    results = {"model": cfg.model, "model_params": params, "epochs": cfg.epochs, "best_epoch": best["epoch"],
               "precision": cfg.precision, "device": str(device), "train_clips": len(train.rows),
               # the best epoch is chosen on validation, so its validation AUC is optimistic; the last is not
               "valid_last_epoch": {"epoch": last["epoch"], "roc_auc": last["valid_roc_auc"],
                                    "pr_auc": last["valid_pr_auc"]}}
    arrays = {}
    for split in ("valid", "test"):
        batches = Batches(data, split, max_clips=cfg.max_eval_clips, **common)
        if len(batches.rows) == 0:
            results[split] = None
            continue
        logits, labels, rows = distributed.gather(ctx, *predict(core, batches, cfg.precision, progress,
                                                                        desc=split))
        scores = tag_scores(labels, logits, data.tags)
        results[split] = {"roc_auc": scores.roc_auc, "pr_auc": scores.pr_auc, "clips": len(rows),
                          "excluded_tags": scores.excluded}
        arrays.update({f"{split}_logits": logits, f"{split}_labels": labels, f"{split}_rows": rows})
    for split in ("valid", "test"):
        if progress and results[split] and results[split]["excluded_tags"]:
            print(f"{split}: {len(results[split]['excluded_tags'])} tag(s) have a single class in the "
                  f"{results[split]['clips']} clips and are left out of the macro AUC (see results.json)")
    if progress and results["valid"] and np.isnan(results["valid"]["roc_auc"]):
        print(f"valid: ROC-AUC is undefined: every tag has a single class in the {results['valid']['clips']} "
              f"validation clips, so no epoch could be chosen on validation; best.pt is the model of epoch "
              f"{best['epoch']}, the last one. Prepare a larger set for a validation split that can rank clips.")
    if ctx.main:
        with replacing(out / "predictions.npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        _write_json(out / RESULTS, results)
    distributed.barrier(ctx)
    return results


def load_run(run: str | os.PathLike, device: str = "cpu"):
    """The best model of a finished (or running) run folder, in eval mode, and its config."""
    run = Path(run)
    config_path, best = run / "config.json", run / "checkpoints" / "best.pt"
    if not config_path.exists() or not best.exists():
        raise FileNotFoundError(f"{run} is not a training run folder (no config.json or checkpoints/best.pt); "
                                f"train one with `rawtag train --out {run}`")
    config = _json_or_none(config_path)
    if not isinstance(config, dict) or "train" not in config or "model_params" not in config:
        raise CheckpointError(f"{config_path} is not a readable run configuration (truncated or edited?); "
                              f"rerun `rawtag train` with the run's settings and --out {run} to rewrite it")
    model = build_model(config["train"]["model"], **config["model_params"])
    fix = f"retrain it: `rawtag train ... --out {run} --force`"
    load_weights(model, load_checkpoint(best, device, fix), best, fix)
    return model.to(device).eval(), config


def evaluate(run: str | os.PathLike, split: str = "valid", data: str | os.PathLike | None = None,
             device: str = "auto", progress: bool = True):
    """Scores of a run's best model on one split of its prepared set (or of `data`). Chapter 03."""
    dev = pick_device(device)
    model, config = load_run(run, dev)
    prepared = PreparedSet(data or config["data"])
    if prepared.tags != config["tags"]:
        raise ValueError(f"{prepared.path} has other tags than the run was trained on")
    train = config["train"]
    if len(prepared.rows(split)) == 0:
        others = [s for s in prepared.manifest["splits"] if s != split and len(prepared.rows(s))]
        raise ValueError(f"{prepared.path} has no {split} clips (scheme {prepared.manifest['params']['scheme']!r})"
                         f"; choose --split {' or '.join(others) or 'valid'}")
    check_rate(model, prepared.sample_rate, str(prepared.path))
    batches = Batches(prepared, split, batch_size=train["batch_size"], normalization=train["normalization"],
                      max_clips=train["max_eval_clips"], device=dev, layout=model.INPUT)
    logits, labels, _ = predict(model, batches, train["precision"], progress, desc=split)
    return tag_scores(labels, logits, prepared.tags)


def tag_audio(path: str | os.PathLike, model: nn.Module, config: dict) -> dict:
    """Tag probabilities for an audio file of any length, format, rate or channel count.

    The file is decoded at the run's sample rate, cut into consecutive clip-length windows (29.125 s at the
    paper's 12 kHz, 29.1 s at other rates; the last one zero-padded; a file shorter than a window is one
    padded window), each window normalized as in training, and the windows' logits averaged. Chapter 07.
    """
    samples = audio.to_int16(audio.load(path, config["sample_rate"]))
    n = audio.clip_samples(config["sample_rate"])
    windows = np.stack([audio.fix_length(samples[i:i + n], n) for i in range(0, max(len(samples), 1), n)])
    mode = config["train"]["normalization"]
    if mode == "dataset":
        scale, offset = minmax_affine(*config["normalization_range"])
    else:
        stats = np.stack([windows.min(axis=1), windows.max(axis=1)], axis=1)
        scale, offset = affine(mode, stats, np.arange(len(windows)))
    x = torch.from_numpy(windows).float() * torch.as_tensor(scale).reshape(-1, 1) + torch.as_tensor(
        offset).reshape(-1, 1)
    device = next(model.parameters()).device
    with torch.no_grad():
        logits = model(audio.model_input(x, model.INPUT).to(device)).mean(dim=0)
    probs = torch.sigmoid(logits).cpu().numpy()
    return dict(sorted(zip(config["tags"], probs.tolist()), key=lambda kv: -kv[1]))

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

import json
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import distributed
from .atomic import replacing, write_text
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


def pick_device(device: str = "auto") -> torch.device:
    """cuda if present, else mps, else cpu; or the device named."""
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _save(obj, path: Path) -> None:
    with replacing(path) as tmp:
        torch.save(obj, tmp)


def _write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=1))


def autocast(device: torch.device, precision: str):
    """The autocast context for `precision`: bfloat16 for "bf16", a no-op for "fp32". Chapter 06."""
    return torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16")


def predict(model: nn.Module, batches: Batches, precision: str = "fp32", progress: bool = False,
            desc: str = "eval"):
    """Logits, labels and rows of every clip in `batches`, as numpy arrays."""
    from tqdm.auto import tqdm

    model.eval()
    logits, labels, rows = [], [], []
    device = batches.device
    with torch.no_grad(), autocast(device, precision):
        for batch in tqdm(batches, desc=desc, leave=False, disable=not progress):
            logits.append(model(batch.x).float().cpu().numpy())
            labels.append(batch.y.cpu().numpy())
            rows.append(batch.rows)
    return np.concatenate(logits), np.concatenate(labels), np.concatenate(rows)


def _scores(labels, logits, tags):
    """`tag_scores` without its per-call warning about single-class tags: `fit` evaluates every epoch, so it
    lists the left-out tags in results.json and says so once at the end instead."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return tag_scores(labels, logits, tags)


def _bce(logits, labels) -> float:
    return float(nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(logits),
                                                                torch.from_numpy(labels)))


def fit(data: str | os.PathLike | PreparedSet, out: str | os.PathLike, config: TrainConfig | None = None,
        progress: bool = True) -> dict:
    """Train `config.model` on the prepared set `data`, writing the run folder `out`; returns the results.

    Adam with BCEWithLogitsLoss on logits pooled over sub-clips; validation loss and AUC every epoch;
    the best-by-validation-AUC model is evaluated on validation and test at the end. Chapter 03. Under
    `torchrun`, each process takes its share of every batch (see `rawtag.distributed`).
    """
    device = pick_device((config or TrainConfig()).device)
    ctx = distributed.from_environment(device)
    try:
        return _fit(data, out, config, progress, ctx, distributed.device_of(ctx, device))
    finally:
        distributed.close(ctx)


def _fit(data, out, config, progress, ctx: distributed.Context, device: torch.device) -> dict:
    from tqdm.auto import tqdm

    data = data if isinstance(data, PreparedSet) else PreparedSet(data)
    cfg = (config or TrainConfig()).resolved()
    out = Path(out)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
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
    if config_path.exists() and last_path.exists():
        without_epochs = lambda c: {**c, "train": {**c["train"], "epochs": None}}  # noqa: E731  (epochs may be extended)
        if without_epochs(json.loads(config_path.read_text())) != without_epochs(json.loads(json.dumps(run_config))):
            raise ValueError(f"{out} holds a run with other settings; choose another --out or delete it")
    distributed.barrier(ctx)  # every process has compared before rank 0 writes
    if ctx.main:
        _write_json(config_path, run_config)

    torch.manual_seed(cfg.seed)
    core = build_model(cfg.model, **params).to(device)
    optimizer = torch.optim.Adam(core.parameters(), lr=cfg.lr)
    scheduler = (torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=cfg.lr_factor,
                                                            patience=cfg.lr_patience)
                 if cfg.lr_factor else None)
    loss_fn = nn.BCEWithLogitsLoss()
    history = {"epochs": [], "iterations": []}
    start_epoch, best_auc, iteration = 0, -1.0, 0
    if last_path.exists():
        state = torch.load(last_path, map_location=device, weights_only=True)
        core.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        if device.type == "cuda" and state.get("cuda_rng"):
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        history, best_auc, iteration = state["history"], state["best_auc"], state["iteration"]
        start_epoch = state["epoch"] + 1
        if progress and start_epoch < cfg.epochs:
            print(f"{out}: resuming after epoch {start_epoch} of {cfg.epochs}")

    model = (torch.nn.parallel.DistributedDataParallel(core, device_ids=[device] if device.type == "cuda" else None)
             if ctx.active else core)
    common = dict(device=device, normalization=cfg.normalization, batch_size=cfg.batch_size,
                  shard=(ctx.rank, ctx.world))
    train = Batches(data, "train", shuffle=True, seed=cfg.seed, max_clips=cfg.max_train_clips, **common)
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
        scores = _scores(labels, logits, data.tags)
        if scheduler is not None:
            scheduler.step(scores.roc_auc)
        record = {"epoch": epoch + 1, "train_loss": distributed.mean(ctx, float(np.mean(losses))),
                  "valid_loss": _bce(logits, labels),
                  "valid_roc_auc": scores.roc_auc, "valid_pr_auc": scores.pr_auc,
                  "lr": optimizer.param_groups[0]["lr"], "train_seconds": seconds,
                  "train_clips_per_s": len(train.rows) / seconds}
        history["epochs"].append(record)
        improved = scores.roc_auc > best_auc
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

    finished = json.loads((out / RESULTS).read_text()) if (out / RESULTS).exists() else None
    if finished is not None and finished["epochs"] == cfg.epochs:
        return finished
    best = torch.load(out / "checkpoints" / "best.pt", map_location=device, weights_only=True)
    core.load_state_dict(best["model"])
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
        scores = _scores(labels, logits, data.tags)
        results[split] = {"roc_auc": scores.roc_auc, "pr_auc": scores.pr_auc, "clips": len(rows),
                          "excluded_tags": scores.excluded}
        arrays.update({f"{split}_logits": logits, f"{split}_labels": labels, f"{split}_rows": rows})
    for split in ("valid", "test"):
        if progress and results[split] and results[split]["excluded_tags"]:
            print(f"{split}: {len(results[split]['excluded_tags'])} tag(s) have a single class in the "
                  f"{results[split]['clips']} clips and are left out of the macro AUC (see results.json)")
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
    config = json.loads(config_path.read_text())
    model = build_model(config["train"]["model"], **config["model_params"])
    model.load_state_dict(torch.load(best, map_location=device, weights_only=True)["model"])
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
    batches = Batches(prepared, split, batch_size=train["batch_size"], normalization=train["normalization"],
                      max_clips=train["max_eval_clips"], device=dev)
    logits, labels, _ = predict(model, batches, train["precision"], progress, desc=split)
    return tag_scores(labels, logits, prepared.tags)


def tag_audio(path: str | os.PathLike, model: nn.Module, config: dict) -> dict:
    """Tag probabilities for an audio file of any length, format, rate or channel count.

    The file is decoded at the run's sample rate, cut into consecutive 29.125 s windows (the last one
    zero-padded; a file shorter than a window is one padded window), each window normalized as in
    training, and the windows' logits averaged. Chapter 07.
    """
    from .data import audio

    samples = audio.to_int16(audio.load(path, config["sample_rate"]))
    n = audio.CLIP_SAMPLES
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
        logits = model(audio.as_subclips(x).to(device)).mean(dim=0)
    probs = torch.sigmoid(logits).cpu().numpy()
    return dict(sorted(zip(config["tags"], probs.tolist()), key=lambda kv: -kv[1]))

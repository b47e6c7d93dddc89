"""Using a trained model: load a run's best model, predict batches, score a split, tag an audio file.

`rawtag.train.fit` validates with `predict` every epoch; `rawtag evaluate` and `rawtag tag` (and chapter
07's "Tag your own music") load a finished run with `load_run`. A run folder's files are named in
`rawtag.runs`.

Chapter: 03_base_cnn
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import runs
from .checkpoints import CheckpointError, load_checkpoint, load_weights
from .data import audio, normalize
from .data.audio import check_rate
from .data.batches import Batches
from .data.prepare import PreparedSet
from .devices import pick_device
from .metrics import tag_scores
from .models import build_model


def autocast(device: torch.device, precision: str):
    """The autocast context for `precision`: bfloat16 for "bf16", a no-op for "fp32".

    Chapter: 06_improvements
    """
    return torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16")


def predict(model: nn.Module, batches: Batches, precision: str = "fp32", progress: bool = False,
            desc: str = "eval"):
    """Logits, labels and rows of every clip in `batches`, as numpy arrays (the model in eval mode).

    Chapter: 03_base_cnn
    """
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


def load_run(run: str | os.PathLike, device: str | torch.device = "cpu"):
    """The best model of a finished (or running) run folder, in eval mode, and its config.

    Chapter: 03_base_cnn
    """
    run = Path(run)
    config_path, best = run / runs.CONFIG, run / runs.BEST
    if not config_path.exists() or not best.exists():
        raise FileNotFoundError(f"{run} is not a training run folder (no {runs.CONFIG} or {runs.BEST}); "
                                f"train one with `rawtag train --out {run}`")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        config = None
    if not isinstance(config, dict) or "train" not in config or "model_params" not in config:
        raise CheckpointError(f"{config_path} is not a readable run configuration (truncated or edited?); "
                              f"rerun `rawtag train` with the run's settings and --out {run} to rewrite it")
    model = build_model(config["train"]["model"], **config["model_params"])
    fix = f"retrain it: `rawtag train ... --out {run} --force`"
    load_weights(model, load_checkpoint(best, device, fix), best, fix)
    return model.to(device).eval(), config


def evaluate(run: str | os.PathLike, split: str = "valid", data: str | os.PathLike | None = None,
             device: str = "auto", progress: bool = True):
    """Scores (`rawtag.metrics.TagScores`) of a run's best model on one split of its prepared set (or of
    `data`, a prepared set with the same tags at the model's sample rate).

    Chapter: 03_base_cnn
    """
    dev = pick_device(device)
    model, config = load_run(run, dev)
    if data is None and not Path(config["data"]).is_dir():
        raise ValueError(f"{run} was trained on {config['data']}, which is not there (moved, deleted, or a path "
                         f"relative to another folder); pass --data with the prepared folder")
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
                      max_clips=train["max_eval_clips"], device=dev, layout=model.INPUT, recycle=True)
    logits, labels, _ = predict(model, batches, train["precision"], progress, desc=split)
    return tag_scores(labels, logits, prepared.tags)


def tag_audio(path: str | os.PathLike, model: nn.Module, config: dict) -> dict:
    """Tag probabilities for an audio file of any length, format, rate or channel count, best first.

    The file is decoded at the run's sample rate, cut into consecutive clip-length windows (29.125 s at the
    paper's 12 kHz, 29.1 s at other rates; the last one zero-padded; a file shorter than a window is one
    padded window), each window normalized as in training (Eq. (1) with the training split's range, or per
    window), and the windows' probabilities averaged (as a clip's segments are, chapter 07: one window of
    silence or noise then moves a tag's probability by at most 1 / windows).

    Chapter: 07_beyond
    """
    rate = config["sample_rate"]
    samples = audio.to_int16(audio.load(path, rate))
    n = audio.clip_samples(rate)
    windows = np.stack([audio.fix_length(samples[i:i + n], n) for i in range(0, max(len(samples), 1), n)])
    mode = config["train"]["normalization"]
    if mode == "dataset":  # the training split's range, stored with the run
        scale, offset = normalize.minmax_affine(*config["normalization_range"])
    else:
        stats = np.stack([windows.min(axis=1), windows.max(axis=1)], axis=1)
        scale, offset = normalize.affine(mode, stats, np.arange(len(windows)))
    x = torch.from_numpy(normalize.apply(windows, np.reshape(scale, (-1, 1)), np.reshape(offset, (-1, 1))))
    device = next(model.parameters()).device
    with torch.no_grad():
        probs = torch.sigmoid(model(audio.model_input(x, model.INPUT).to(device))).mean(dim=0).cpu().numpy()
    return dict(sorted(zip(config["tags"], probs.tolist(), strict=True), key=lambda kv: -kv[1]))

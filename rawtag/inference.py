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


def tag_audio(path: str | os.PathLike, model: nn.Module, config: dict, effect=None) -> dict:
    """Tag probabilities for an audio file of any length, format, rate or channel count, best first.

    The file is decoded at the run's sample rate, cut into consecutive clip-length windows (29.125 s at the
    paper's 12 kHz, 29.1 s at other rates; the last one zero-padded; a file shorter than a window is one
    padded window), each window normalized as in training (Eq. (1) with the training split's range, or per
    window), and the windows' probabilities averaged (as a clip's segments are, chapter 07: one window of
    silence or noise then moves a tag's probability by at most 1 / windows). `effect`, if given, is applied
    to the decoded signal first (float audio at the run's rate, e.g. `rawtag.transfer.band_pass`): how
    chapter 08 asks which band of real music a model's tags come from.

    Chapter: 07_beyond
    """
    rate = config["sample_rate"]
    signal = audio.load(path, rate)
    samples = audio.to_int16(signal if effect is None else effect(signal, rate))
    n = audio.clip_samples(rate)
    windows = np.stack([audio.fix_length(samples[i:i + n], n) for i in range(0, max(len(samples), 1), n)])
    with torch.no_grad():
        probs = torch.sigmoid(model(_as_trained(windows, model, config))).mean(dim=0).cpu().numpy()
    return dict(sorted(zip(config["tags"], probs.tolist(), strict=True), key=lambda kv: -kv[1]))


def _as_trained(windows: np.ndarray, model: nn.Module, config: dict) -> torch.Tensor:
    """int16 windows [N, samples] normalized as the run was trained (Eq. (1) with the training split's
    range, or per window) and laid out for `model`, on the model's device."""
    mode = config["train"]["normalization"]
    if mode == "dataset":  # the training split's range, stored with the run
        scale, offset = normalize.minmax_affine(*config["normalization_range"])
    else:
        stats = np.stack([windows.min(axis=1), windows.max(axis=1)], axis=1)
        scale, offset = normalize.affine(mode, stats, np.arange(len(windows)))
    x = torch.from_numpy(normalize.apply(windows, np.reshape(scale, (-1, 1)), np.reshape(offset, (-1, 1))))
    return audio.model_input(x, model.INPUT).to(next(model.parameters()).device)


def split_logits(model: nn.Module, config: dict, prepared: PreparedSet, split: str = "valid", effect=None,
                 batch_size: int = 10):
    """Logits and labels of a loaded run (`load_run`) on one split of a prepared set, each clip first
    passed through `effect` (as in `tag_audio`: float audio at the set's rate in, the same out). Chapter
    08 filters the stand-in's validation clips and real music with the same band filters and compares.

    Chapter: 08_real_music
    """
    check_rate(model, prepared.sample_rate, str(prepared.path))
    rows = prepared.rows(split)
    logits = []
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            clips = prepared.clips[rows[start:start + batch_size]]
            if effect is not None:
                clips = audio.to_int16(np.stack([effect(c.astype(np.float32) / 32767.0, prepared.sample_rate)
                                                 for c in clips]))
            logits.append(model(_as_trained(np.asarray(clips), model, config)).float().cpu().numpy())
    return np.concatenate(logits), prepared.labels[rows]

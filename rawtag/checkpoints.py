"""Checkpoints: written whole or not at all, read as weights only, refused with a reason when damaged.

A run keeps `checkpoints/last.pt` (everything needed to resume) and `checkpoints/best.pt` (the model of the
best validation epoch). `torch.load(..., weights_only=True)` is never relaxed, so a checkpoint can hold
tensors and plain values but can run no code.

Chapter: 03_base_cnn
"""
from __future__ import annotations

import errno
import pickle
import warnings
from pathlib import Path

import torch
from torch import nn

from .atomic import RESUME, DiskFull, free_bytes, human, replacing


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file, the reason and the fix.

    Chapter: 03_base_cnn
    """


def load_checkpoint(path: Path, device, fix: str) -> dict:
    """`torch.load(path, weights_only=True)` with a one-line CheckpointError for a missing, empty, truncated,
    corrupt or unsafe file. `weights_only` is never relaxed: a file that needs it is refused.

    Chapter: 03_base_cnn
    """
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
    """model.load_state_dict, with a one-line CheckpointError when the weights are of another model's shape.

    Chapter: 03_base_cnn
    """
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        lines = [line.strip() for line in str(e).splitlines()[1:] if line.strip()]
        raise CheckpointError(f"{path} holds weights of another model shape than config.json describes "
                              f"({lines[0] if lines else 'keys differ'}); {fix}") from None


def save_checkpoint(obj, path: Path) -> None:
    """`torch.save` into a temporary file renamed over `path` (never a half-written checkpoint); a failed
    write (full disk, file-size limit) is a one-line DiskFull that says how to resume.

    Chapter: 03_base_cnn
    """
    with replacing(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as e:  # torch reports a failed write as "enforce fail at inline_container.cc"
            if "inline_container" not in str(e) and "write" not in str(e).lower():
                raise
            raise DiskFull(errno.ENOSPC, f"cannot write {path}: the write failed ({human(free_bytes(path))} free "
                                         f"on its disk: full, or a file-size limit?); {RESUME}") from e

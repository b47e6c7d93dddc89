"""Where models run: `pick_device("auto" | "cpu" | "cuda" | "cuda:N" | "mps")`.

Every chapter's `device` parameter and every command's `--device` go through `pick_device`, so an unknown
or unavailable device is refused in one place, with one line that lists what this torch supports here.
`bf16_is_native` says whether bfloat16 runs in hardware here: a CPU without AVX512-BF16 or AMX emulates
it, about 35x slower than float32 for the improved CNN (0.17 against 6.0 clips/s on a 2-core AVX2 EPYC).

Chapter: 03_base_cnn
"""
from __future__ import annotations

import torch

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
    an unknown or unavailable device is a one-line ValueError listing the choices and what this torch has.

    Chapter: 03_base_cnn
    """
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


def bf16_is_native(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 in hardware: a CUDA GPU that supports it, a CPU with AVX512-BF16
    or AMX (others emulate it, far slower than float32), any other device (mps) assumed so.

    Chapter: 06_improvements
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return True

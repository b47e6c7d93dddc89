"""Profiles: one switch for how big every chapter and the CLI run.

- `smoke`: CI; seconds per chapter on 2 CPU cores, on a tiny synthetic set.
- `quick`: the default main job; the whole book on the synthetic set on a laptop CPU.
- `paper`: the paper's protocol (20 epochs, every clip) on MTAT, for a GPU.

`seeds` is how many seeds chapter 04 trains per setting of the sweep.

A profile sets defaults only; an explicit flag or notebook parameter wins. Taught in the README and
chapter 03.

Chapter: 03_base_cnn
"""
from __future__ import annotations

PROFILES = {
    "smoke": {"dataset": "synthetic", "synth_clips": 96, "epochs": 2, "max_train_clips": 48,
              "max_eval_clips": 32, "log_every": 2, "seeds": 2,
              "per_model": {"beyond": {"epochs": 1, "max_train_clips": 4, "max_eval_clips": 6}}},
    "quick": {"dataset": "synthetic", "synth_clips": 1200, "epochs": 20, "max_train_clips": None,
              "max_eval_clips": None, "log_every": 30, "seeds": 3,
              # the improved CNN trains at ~6 clips/s on 2 CPU cores: fewer clips and epochs keep it minutes
              "per_model": {"improved": {"epochs": 6, "max_train_clips": 300},
                            # chapter 07's equal budget for every model: the sample-level models train at
                            # 0.3-0.7 clips/s on 2 CPU cores, so on a CPU this is a first look, not a contest
                            "beyond": {"epochs": 1, "max_train_clips": 30, "max_eval_clips": 20}}},
    "paper": {"dataset": "mtat", "synth_clips": None, "epochs": None, "max_train_clips": None,
              "max_eval_clips": None, "log_every": 300, "seeds": 3},
}
TRAIN_KEYS = ("epochs", "max_train_clips", "max_eval_clips", "log_every")
PRECISIONS = ("fp32", "bf16")  # float32 (TF32 matmuls allowed on GPUs), or bfloat16 autocast


def profile(name: str, model: str | None = None) -> dict:
    """The profile's settings, with the overrides for `model` applied where the profile has any. `beyond`
    names chapter 07's budget, the same for every model it compares.

    Chapter: 03_base_cnn
    """
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    settings = {k: v for k, v in PROFILES[name].items() if k != "per_model"}
    settings.update(PROFILES[name].get("per_model", {}).get(model, {}))
    return settings


def train_config(name: str, model: str = "base", model_params: dict | None = None, **overrides):
    """A `TrainConfig` for `model` with the profile's budget; `overrides` (TrainConfig fields) win where
    they are not None. Used by `rawtag train` and by every chapter that trains.

    Chapter: 03_base_cnn
    """
    from .train import TrainConfig

    budget = {k: v for k, v in profile(name, model).items() if k in TRAIN_KEYS}
    budget.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(model=model, model_params=dict(model_params or {}), **budget)

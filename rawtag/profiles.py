"""Profiles: one switch for how big every chapter and the CLI run.

- `smoke`: CI; seconds per chapter on 2 CPU cores, on a tiny synthetic set.
- `quick`: the default main job; the whole book on the synthetic set on a laptop CPU.
- `paper`: the paper's protocol (20 epochs, every clip) on MTAT, for a GPU.

`soundfont` is the General MIDI bank that plays the synthetic set (`rawtag.data.synth.banks`): TimGM6mb,
which pip installs, for CI; FluidR3_GM, fetched once, for the book. `seeds` is how many seeds chapter 04
trains per setting of the sweep. `reference_epochs`, where a profile
sets it, is how long the book's reference base CNN trains (chapter 03's run, which chapters 05, 06 and 08
read back); every other run trains `epochs`.

A profile sets defaults only; an explicit flag or notebook parameter wins. Taught in the README and
chapter 03.

Chapter: 03_base_cnn
"""
from __future__ import annotations

PROFILES = {
    "smoke": {"dataset": "synthetic", "synth_clips": 96, "epochs": 2, "max_train_clips": 48,
              "max_eval_clips": 32, "log_every": 2, "seeds": 2, "soundfont": "TimGM6mb",
              "per_model": {"beyond": {"epochs": 1, "max_train_clips": 4, "max_eval_clips": 6}}},
    "quick": {"dataset": "synthetic", "synth_clips": 1200, "epochs": 20, "max_train_clips": None,
              "max_eval_clips": None, "log_every": 30, "seeds": 3,
              # many recordings per instrument: the improved CNN agrees better with real music on it over three
              # seeds (benchmarks/README, "Another SoundFont")
              "soundfont": "FluidR3_GM",
              # on the quick set's 975 training clips the base CNN's validation AUC rests on a plateau until
              # about 27,000 clip presentations (28 epochs; benchmarks/README, "Stand-in size and transfer"):
              # the reference run trains past it, the sweep and the other comparisons keep the paper's 20
              "reference_epochs": 40,
              # the improved CNN trains at ~6 clips/s on 2 CPU cores: few clips keep it minutes; as many
              # clip-epochs as 6 x 300, spent on 10 epochs so that its plateau schedule (> 3 epochs) can fire
              "per_model": {"improved": {"epochs": 10, "max_train_clips": 160},
                            # chapter 07's equal budget for every model: the sample-level models train at
                            # 0.3-0.7 clips/s on 2 CPU cores, so on a CPU this is a first look, not a contest
                            "beyond": {"epochs": 1, "max_train_clips": 30, "max_eval_clips": 20},
                            # chapter 07's budget for the cheap 12 kHz models (base, melcnn; hundreds of
                            # clips/s): every training and validation clip, enough epochs to learn
                            "beyond_cheap": {"epochs": 6}}},
    "paper": {"dataset": "mtat", "synth_clips": None, "soundfont": None, "epochs": None, "max_train_clips": None,
              "max_eval_clips": None, "log_every": 300, "seeds": 3},
}
TRAIN_KEYS = ("epochs", "max_train_clips", "max_eval_clips", "log_every")
PRECISIONS = ("fp32", "bf16")  # float32 (TF32 matmuls allowed on GPUs), or bfloat16 autocast


def profile(name: str, model: str | None = None) -> dict:
    """The profile's settings, with the overrides for `model` applied where the profile has any. `beyond`
    names chapter 07's budget, the same for every model it compares; `beyond_cheap` its larger budget for
    the cheap models.

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


#: The chapters' parameters that are whole numbers, with their least value; those marked None may be None.
COUNT_PARAMETERS = {"length": (1, False), "stride": (1, False), "seed": (0, False), "examples": (1, False),
                    "hist_clips": (1, False), "min_positives": (0, False), "top": (1, False),
                    "experiment_epochs": (1, True), "epochs": (1, True), "seeds": (1, True),
                    "processes": (1, True)}
#: ... that are text (paths, a device), flags, or lists.
TEXT_PARAMETERS = ("data_root", "runs_root", "device", "sweep_dir")
FLAG_PARAMETERS = ("compare_pooling", "ablation")
LIST_PARAMETERS = ("modes", "settings", "models")


def check_parameters(values) -> None:
    """Check a chapter's parameters (`values`: a mapping such as the chapter's `globals()`; names it does
    not know are left alone) before anything runs: one ValueError naming the first bad one, what it must
    be and an example, instead of a failure deep in the chapter (`papermill -p length abc`). Each chapter
    calls it first in the cell after its `parameters` cell.

    Chapter: 03_base_cnn
    """
    from .data.mtat import SCHEMES
    from .workspace import DATASETS

    choices = {"profile": tuple(PROFILES), "dataset": (None, *DATASETS), "scheme": SCHEMES, "precision": PRECISIONS}
    if "time_pool" in values or "clip_pool" in values:  # the pooling modes live beside torch
        from .models.paper import POOLS

        choices.update(time_pool=POOLS, clip_pool=POOLS)
    for name, value in values.items():
        if name in choices and value not in choices[name]:
            expected, example = f"one of {', '.join(map(str, choices[name]))}", choices[name][-1]
        elif name in COUNT_PARAMETERS:
            least, optional = COUNT_PARAMETERS[name]
            if (value is None and optional) or (type(value) is int and value >= least):
                continue
            expected = f"a whole number of at least {least}" + (" (or None)" if optional else "")
            example = max(least, 1)
        elif name in TEXT_PARAMETERS and not isinstance(value, str):
            expected, example = "text", "auto" if name == "device" else name.split("_")[0]
        elif name in FLAG_PARAMETERS and not isinstance(value, bool):
            expected, example = "True or False", "True"
        elif name in LIST_PARAMETERS and not isinstance(value, list):
            expected, example = "a list", "'[...]'"
        else:
            continue
        raise ValueError(f"chapter parameter {name} = {value!r}: expected {expected} (e.g. `-p {name} {example}`)")

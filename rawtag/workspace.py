"""A chapter's workspace: which data and which run folders a profile uses, made ready on first use.

Every chapter's second cell builds one from its `parameters` cell (profile, dataset, data_root, runs_root,
device; the split scheme is the paper's unless a chapter asks for another). Relative folders are taken
from the project root (the nearest folder above the working directory holding `_toc.yml`), else from the
working directory, so a chapter finds the same data whether it runs from `notebooks/`, from the book
runner or on Colab. Chapter 01 shows the steps `data()` takes.

Chapter: 01_data
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .data.mtat import SCHEMES
from .profiles import PRECISIONS, PROFILES, profile, train_config

DATASETS = ("synthetic", "mtat")


def project_root(start: str | os.PathLike | None = None) -> Path | None:
    """The nearest folder at or above `start` (default: the working directory) holding `_toc.yml`; the
    book runner names it in `RAWTAG_PROJECT` for chapters it executes elsewhere.

    Chapter: 01_data
    """
    if start is None and os.environ.get("RAWTAG_PROJECT"):
        return Path(os.environ["RAWTAG_PROJECT"])
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").exists():
            return folder
    return None


def shared_folder(name: str) -> Path | None:
    """`shared/NAME` beside the project root, where rawtag's developers keep MTAT's metadata (`mtat`) and
    example recordings (`realaudio`); None where there is no such folder (a reader's own checkout).

    Chapter: 01_data
    """
    root = project_root()
    folder = root.parent / "shared" / name if root else None
    return folder if folder is not None and folder.is_dir() else None


def locate(path: str | os.PathLike) -> Path:
    """An absolute path: relative ones are taken from the project root, else the working directory.

    Chapter: 01_data
    """
    path = Path(path).expanduser()
    if path.is_absolute():
        return path
    return (project_root() or Path.cwd()) / path


def shown(path: str | os.PathLike) -> str:
    """`path` as a chapter should print it: relative to the project root when inside it (so a rendered page
    never shows the folders of the machine that built it), else from the folder above it.

    Chapter: 01_data
    """
    path = Path(path).resolve()
    for base in (project_root(), Path.cwd()):
        if base is not None and path.is_relative_to(base.resolve()):
            return path.relative_to(base.resolve()).as_posix() or "."
    return "/".join(path.parts[-2:])


@dataclass
class Workspace:
    """Where a chapter's data and runs live and how big they are: built from the chapter's `parameters`
    cell. `data()` makes the prepared set, `train()` trains or reads back a run. Chapter 01.

    Chapter: 01_data
    """

    profile: str = "quick"
    dataset: str | None = None  # None: the profile's dataset
    data_root: str | os.PathLike = "data"
    runs_root: str | os.PathLike = "runs"
    device: str = "auto"
    scheme: str = "paper"  # the split (rawtag.data.mtat.SCHEMES): chapters 01-06 the paper's, 07 Won's
    precision: str = "fp32"  # of every run this workspace trains (rawtag.profiles.PRECISIONS)

    def __post_init__(self):
        settings = profile(self.profile)
        self.dataset = self.dataset or settings["dataset"]
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown split scheme {self.scheme!r}; choose one of {', '.join(SCHEMES)}")
        self.data_root, self.runs_root = locate(self.data_root), locate(self.runs_root)
        self.synth_clips = settings["synth_clips"] or PROFILES["quick"]["synth_clips"]
        # the bank that plays the synthetic set: RAWTAG_SOUNDFONT (a name or an .sf2 file) over the profile's
        self.soundfont = (os.environ.get("RAWTAG_SOUNDFONT") or settings.get("soundfont")
                          or PROFILES["quick"]["soundfont"])

    @property
    def bank_suffix(self) -> str:
        """"" for a set played on the default bank (TimGM6mb), else "-" and the bank's name (an .sf2 file's
        stem): a set played on another bank, and the runs trained on it, live in folders of their own."""
        from .data.synth.sampler import DEFAULT

        return "" if self.dataset != "synthetic" or self.bank == DEFAULT else f"-{self.bank}"

    @property
    def bank(self) -> str:
        """The bank's name: a named bank's, or an .sf2 file's stem."""
        return Path(str(self.soundfont)).stem

    @property
    def label(self) -> str:
        """What every caption says about where a number comes from."""
        data = (f"synthetic set ({self.synth_clips:,} clips on {self.bank}, {self.scheme} split)"
                if self.dataset == "synthetic" else f"MagnaTagATune ({self.scheme} split)")
        return f"{data}, {self.profile} profile" + (", bfloat16" if self.precision == "bf16" else "")

    @property
    def reference_epochs(self) -> int:
        """How many epochs the book's reference base CNN trains: chapter 03's run, which chapters 05, 06 and
        08 read back. The profile's `reference_epochs` where it sets one (quick: 40, past the plateau its
        comment describes), else the base CNN's epochs, as every other run (chapter 04's sweep).

        Chapter: 03_base_cnn
        """
        return profile(self.profile).get("reference_epochs") or self.config("base").resolved().epochs

    @property
    def source(self) -> Path:
        """The audio in MTAT's on-disk format: the synthetic set, or the downloaded MTAT."""
        if self.dataset == "synthetic":
            return self.data_root / f"synthetic-{self.synth_clips}{self.bank_suffix}" / "source"
        return self.data_root / "mtat"

    @property
    def prepared(self) -> Path:
        """The prepared set: one per split scheme, since the scheme decides the tags and the clips."""
        if self.dataset == "synthetic":
            return self.data_root / f"synthetic-{self.synth_clips}{self.bank_suffix}" / f"prepared-{self.scheme}"
        return self.data_root / f"mtat-prepared-{self.scheme}"

    def data(self, progress: bool = True):
        """The prepared set, made first where missing: synthesized (or downloaded, for MTAT), then prepared.

        Both steps are resumable and do nothing when already done."""
        from .data import mtat
        from .data.download import download
        from .data.prepare import PreparedSet, prepare
        from .data.synth import write_synthetic

        if not (self.prepared / "manifest.json").exists():
            if self.dataset == "synthetic":
                write_synthetic(self.source, self.synth_clips, seed=0, progress=progress, soundfont=self.soundfont)
            elif not (self.source / mtat.ANNOTATIONS).exists():
                print(f"MTAT is not in {self.source}: downloading about 3 GB (resumable; see chapter 01)")
                download(self.source, progress=progress)
            prepare(self.source, self.prepared, scheme=self.scheme, progress=progress)
        return PreparedSet(self.prepared)

    def data_for(self, config, progress: bool = True):
        """The prepared set a run of `config` reads: this workspace's (12 kHz) set, or for a model built for
        another rate (chapter 07's sample-level models, 22,050 Hz) a set at that rate, prepared on first use
        from the same source and for the same clips the run will use (`max_train_clips`/`max_eval_clips` of
        the 12 kHz set), so that both rates' runs see the same music and a quick book stays small on disk."""
        from .data.audio import SAMPLE_RATE
        from .data.batches import subset
        from .data.prepare import PreparedSet, prepare

        base = self.data(progress=progress)
        rate = config.model_params.get("sample_rate", SAMPLE_RATE)
        if rate == base.sample_rate:
            return base
        limits = {"train": config.max_train_clips, "valid": config.max_eval_clips, "test": config.max_eval_clips}
        only = None
        if any(limit is not None for limit in limits.values()):
            only = [base.paths[r] for split, limit in limits.items() for r in subset(base.rows(split), limit)]
        path = self.prepared.with_name(f"{self.prepared.name}-{rate}hz" + (f"-{len(only)}clips" if only else ""))
        if not (path / "manifest.json").exists():
            prepare(self.source, path, scheme=self.scheme, top_k=base.manifest["params"]["top_k"], sample_rate=rate,
                    only=only, progress=progress)
        return PreparedSet(path)

    def config(self, model: str = "base", budget_of: str | None = None, **settings):
        """The TrainConfig for `model` under this profile; `settings` are model parameters or TrainConfig
        fields; `budget_of` borrows another model's budget (epochs, clips), for comparisons at equal cost.
        Model parameters are completed with the model's defaults, so equal runs have equal configs."""
        from .models import defaults

        settings = {"precision": self.precision, **settings}
        train_fields = _train_fields()
        overrides = {k: v for k, v in settings.items() if k in train_fields}
        params = {**{k: v for k, v in defaults(model).items() if k != "n_tags"},
                  **{k: v for k, v in settings.items() if k not in train_fields}}
        cfg = train_config(self.profile, model, params, device=self.device, **overrides)
        if budget_of is not None:
            budget = train_config(self.profile, budget_of)
            for key in ("epochs", "max_train_clips", "max_eval_clips"):
                if key not in overrides:
                    setattr(cfg, key, getattr(budget, key))
        return cfg

    def run_dir(self, model: str = "base", **settings) -> Path:
        """The run folder for these settings: named by the model and every setting that is not a default
        (the model's, or the profile's budget for it, such as `epochs=20` in the quick profile), so two
        chapters asking for the same run share it (and the second finds it finished). Runs on the paper
        split live in `{dataset}-{profile}/`, runs on another in `{dataset}-{profile}-{scheme}/`."""
        from .models import defaults
        from .train import TrainConfig

        usual = {**defaults(model), **{f.name: f.default for f in fields(TrainConfig)}}
        budget = asdict(self.config(model).resolved())
        settings = {"precision": self.precision, **settings}
        named = [f"{k}={_short(v)}" for k, v in sorted(settings.items())
                 if usual.get(k, object()) != v and budget.get(k, object()) != v]
        group = f"{self.dataset}{self.bank_suffix}-{self.profile}"
        group += "" if self.scheme == "paper" else f"-{self.scheme}"
        return self.runs_root / group / "_".join([model, *named])

    def train(self, model: str = "base", budget_of: str | None = None, progress: bool = True, threads=None,
              **settings):
        """Train (or resume, or read back) the run for these settings; returns (run folder, results).
        `threads`, if given, is asked before every batch how many CPU threads to use (see `fit`)."""
        from .train import fit

        out = self.run_dir(model, **({"budget_of": budget_of} if budget_of else {}), **settings)
        config = self.config(model, budget_of, **settings)
        return out, fit(self.data_for(config, progress=False), out, config, progress, threads=threads)


def _short(value) -> str:
    if isinstance(value, (tuple, list)):
        return "-".join(map(str, value))
    return str(value)


def _train_fields() -> set:
    """TrainConfig's fields a chapter may set (the model and device come from elsewhere)."""
    from .train import TrainConfig

    return {f.name for f in fields(TrainConfig)} - {"model", "model_params", "device"}

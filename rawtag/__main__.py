"""The command line: `python -m rawtag SUBCOMMAND ...` (also installed as `rawtag`).

Every subcommand answers --help, prints progress for long work, and exits non-zero with a one-line reason
on bad input. The README lists them and states that contract ("The core, from the command line");
book/running.md shows them at work on MTAT and a GPU.

The choices of options come from the core's own tuples (`SCHEMES`, `PROFILES`, `MODES`, `DATASETS`,
`POOLS`, ...), so a value added there is offered here. torch is imported only for `train`, whose models
and pooling modes live beside it: `rawtag --help` and the other commands start without it.

Chapter: 01_data
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from concurrent.futures import BrokenExecutor
from pathlib import Path

from .profiles import PRECISIONS, PROFILES


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be {'at least 1' if least else '0 or more'}, got {value}")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, e.g. 0.001, got {text}")
    return value


def _positive(text: str) -> int:
    return _whole(text, 1)


def _non_negative(text: str) -> int:
    return _whole(text, 0)


def cmd_synth(a):
    """`rawtag synth`: write the synthetic set (`rawtag.data.synth.write_synthetic`).

    Chapter: 01_data
    """
    from .data.synth import write_synthetic

    out = write_synthetic(a.out, a.clips, seed=a.seed, workers=a.workers, label_drop=a.label_drop, force=a.force,
                          soundfont=a.soundfont)
    print(f"{out}: {a.clips} synthetic clips in MTAT's format")


def cmd_download(a):
    """`rawtag download`: fetch and verify MTAT (`rawtag.data.download.download`).

    Chapter: 01_data
    """
    from .data.download import download

    download(a.root, base_url=a.base_url)
    print(f"{a.root}: MTAT downloaded and verified")


def cmd_splits(a):
    """`rawtag splits`: the top-K tags and the train/valid/test clip lists, as JSON.

    Chapter: 01_data
    """
    from .atomic import write_text
    from .data.mtat import MTATError, outside_folders, read_annotations, splits

    target, source = Path(a.json), Path(a.annotations)
    if target.exists() and source.exists() and os.path.samefile(target, source):
        raise MTATError(f"--json {a.json} is the annotation file itself: writing it would destroy the input; "
                        f"choose another --json")
    if target.is_dir():
        raise MTATError(f"--json {a.json} is a folder; give a file name, e.g. {target / 'splits.json'}")
    if target.exists() and not a.force and not _is_splits_json(target):
        raise MTATError(f"--json {a.json} exists and is not a splits file written by `rawtag splits`; choose "
                        f"another --json, or pass --force to replace it")
    ann = read_annotations(source)
    result = splits(ann, a.scheme, a.top_k)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text(target, json.dumps(result, indent=1))
    print(f"{a.json}: {len(result['tags'])} tags; train {len(result['train'])}, valid {len(result['valid'])}, "
          f"test {len(result['test'])}")
    outside = outside_folders(ann)
    if outside:
        print(f"  {len(outside)} clip(s) outside folders 0-f are in no split: {', '.join(outside[:3])}"
              + (" ..." if len(outside) > 3 else ""))


def _is_splits_json(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and set(data) == {"tags", "train", "valid", "test"}


def cmd_prepare(a):
    """`rawtag prepare`: decode a source once into a prepared set (`rawtag.data.prepare.prepare`).

    Chapter: 01_data
    """
    from .data.prepare import prepare

    prepare(a.source, a.out, scheme=a.scheme, top_k=a.top_k, workers=a.workers, sample_rate=a.sample_rate,
            force=a.force)


def cmd_train(a):
    """`rawtag train`: train a model on a prepared set with a profile's budget (`rawtag.train.fit`).

    Chapter: 03_base_cnn
    """
    from .profiles import train_config
    from .train import fit

    params = {k: v for k, v in (("length", a.length), ("stride", a.stride), ("time_pool", a.time_pool),
                                ("clip_pool", a.clip_pool)) if v is not None}
    cfg = train_config(a.profile, a.model, params, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                       seed=a.seed, normalization=a.normalization, max_train_clips=a.max_train_clips,
                       max_eval_clips=a.max_eval_clips, log_every=a.log_every, device=a.device,
                       precision=a.precision)
    results = fit(a.data, a.out, cfg, force=a.force)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 reports
        return
    last = results["valid_last_epoch"]
    if results["valid"] and results["valid"]["roc_auc"] != results["valid"]["roc_auc"]:  # NaN
        print(f"{a.out}: valid ROC-AUC undefined (every tag has a single class in the {results['valid']['clips']} "
              f"validation clips); checkpoints/best.pt is the last epoch's model ({results['best_epoch']})")
        return
    print(f"{a.out}: valid ROC-AUC {last['roc_auc']:.4f} at the last epoch ({last['epoch']}), "
          f"{results['valid']['roc_auc']:.4f} at the best epoch ({results['best_epoch']}, chosen on validation: "
          f"optimistic); valid PR-AUC {results['valid']['pr_auc']:.4f}" + (
              f"; test ROC-AUC {results['test']['roc_auc']:.4f} PR-AUC {results['test']['pr_auc']:.4f}"
              if results.get("test") else ""))


def cmd_evaluate(a):
    """`rawtag evaluate`: macro ROC-AUC and PR-AUC of a run's best model (`rawtag.inference.evaluate`).

    Chapter: 03_base_cnn
    """
    from .inference import evaluate

    scores = evaluate(a.run, a.split, data=a.data, device=a.device)
    print(f"{a.split}: macro ROC-AUC {scores.roc_auc:.4f}  PR-AUC {scores.pr_auc:.4f}"
          + (f"  ({len(scores.excluded)} single-class tags left out)" if scores.excluded else ""))


def cmd_tag(a):
    """`rawtag tag`: the top tags of audio files (`rawtag.inference.tag_audio`); unreadable files are skipped.

    Chapter: 07_beyond
    """
    from .data.audio import AudioError
    from .devices import pick_device
    from .inference import load_run, tag_audio

    model, config = load_run(a.run, pick_device(a.device))
    failed = []
    for path in a.files:
        try:
            probs = tag_audio(path, model, config)
        except AudioError as e:  # one unreadable file is reported; the others are still tagged
            print(f"rawtag tag: skipped {e}", file=sys.stderr)
            failed.append(path)
            continue
        print(path)
        for tag, p in list(probs.items())[: a.top]:
            print(f"  {p:6.3f}  {tag}")
    if failed:
        raise AudioError(f"{len(failed)} of {len(a.files)} file(s) could not be read: {', '.join(failed)}")


def cmd_book(a):
    """`rawtag book run|build|publish`: execute the chapters, build the HTML, or set the repository URL that
    the Colab buttons and install cells use (`rawtag.book`).

    Chapter: 01_data
    """
    from . import book

    if a.action == "publish":
        if not a.repository:
            raise book.BookError("book publish needs --repository URL (where readers install rawtag from)")
        changed = book.publish(a.repository)
        print(f"repository {a.repository}: changed {len(changed)} file(s)"
              + "".join(f"\n  {path.name}" for path in changed))
    elif a.action == "run":
        book.run(a.profile, a.only, out=a.executed, dataset=a.dataset, data_root=a.data_root,
                 runs_root=a.runs_root, device=a.device)
    else:
        book.build(a.executed, a.out)


def _model_names(argv) -> list[str] | None:
    """The registered models, for `train --model`'s choices; imported (with torch) only for `train`."""
    if "train" not in argv:
        return None
    from .models import MODELS

    return sorted(MODELS)


def build_parser(models: list[str] | None = None, pools: tuple[str, ...] | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand. `models` and `pools` are `train`'s choices that live beside torch
    (`rawtag.models.MODELS`, `rawtag.models.paper.POOLS`): `main` passes `models` only for `train`, so that
    other commands never import torch; given `models`, torch is loaded and `pools` defaults to `POOLS`.

    Chapter: 01_data
    """
    from . import __version__
    from .data.audio import SAMPLE_RATE
    from .data.mtat import SCHEMES, SPLIT_FOLDERS
    from .data.normalize import MODES
    from .workspace import DATASETS

    if pools is None and models is not None:
        from .models.paper import POOLS as pools
    # `train` offers every normalization but `raw`: int16 values as they are (up to +-32,767) are chapter
    # 02's experiment, the paper's "before", trained there through the library; the command line offers
    # only the settings worth training with.
    train_modes = tuple(m for m in MODES if m != "raw")
    # `evaluate` scores held-out splits only: the training split is what the model was fitted on.
    held_out = tuple(s for s in SPLIT_FOLDERS if s != "train")

    p = argparse.ArgumentParser(prog="rawtag", description="End-to-end music auto-tagging from raw audio: "
                                "data (MTAT or a synthetic set), preparation, training, evaluation, tagging, "
                                "and the book.")
    p.add_argument("--version", action="version", version=f"rawtag {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, summary, description):
        return sub.add_parser(name, help=summary, description=f"{summary[0].upper()}{summary[1:]}. {description}")

    force = "replace what is there (by default a folder holding other data is refused)"

    s = command("synth", "write the synthetic set in MTAT's on-disk format",
                "Folders 0-f of 29.1 s MP3s, annotations_final.csv and clip_info_final.csv, deterministic in "
                "--seed. Resumable: rerun the same command after a kill. A folder that holds another dataset "
                "(MTAT, another seed) is refused unless --force.")
    s.add_argument("--out", required=True, help="the folder to write (new, empty, or this same set)")
    s.add_argument("--clips", type=_positive, required=True, help="how many clips (MTAT has 25,863)")
    s.add_argument("--seed", type=_non_negative, default=0, help="random seed, 0 or more (default 0)")
    s.add_argument("--workers", type=_positive, default=None, help="processes (default: all cores)")
    s.add_argument("--label-drop", type=float, default=0.1,
                   help="chance of dropping each positive label, in [0, 1) (default 0.1)")
    s.add_argument("--soundfont", default=None, metavar="BANK",
                   help="the General MIDI bank whose recordings play every part: TimGM6mb (the default, which "
                        "pretty_midi ships), FluidR3_GM (the book's quick profile; the system's copy, or fetched "
                        "once from Debian, 120 MB), or the path of any .sf2 file")
    s.add_argument("--force", action="store_true", help=force + "; every clip is rendered again")
    s.set_defaults(handler=cmd_synth)

    s = command("download", "fetch MTAT (audio, annotations, clip info), verified and resumable",
                "About 3 GB from the official site, each file checked against its published sha256, then "
                "extracted into folders 0-f. Rerun the same command to resume.")
    s.add_argument("--root", required=True, help="the folder to download into")
    s.add_argument("--base-url", default=None, help="a mirror of the official folder")
    s.set_defaults(handler=cmd_download)

    s = command("splits", "write the top-K tags and the train/valid/test clip lists as JSON",
                "Reads an annotations_final.csv and writes {\"tags\", \"train\", \"valid\", \"test\"}. Clips "
                "outside folders 0-f are listed, not dropped silently.")
    s.add_argument("--annotations", required=True, help="MTAT's annotations_final.csv (or the synthetic set's)")
    s.add_argument("--scheme", choices=SCHEMES, default="folder",
                   help="folder: 0-b / c / d-f; won: folder without the 3 broken clips; paper: the paper's "
                        "synonym-merged tags, 0-c / d-f (default folder)")
    s.add_argument("--top-k", type=_positive, default=50, help="how many of the most frequent tags (default 50)")
    s.add_argument("--json", required=True, help="the JSON file to write (never the annotation file)")
    s.add_argument("--force", action="store_true", help="replace a --json file that is not a splits file")
    s.set_defaults(handler=cmd_splits)

    s = command("prepare", "decode audio once into an int16 memmap, labels and a manifest",
                "Parallel, resumable (rerun the same command after a kill or a full disk) and idempotent. "
                "Unreadable clips are skipped and listed in manifest.json.")
    s.add_argument("--source", required=True, help="folder with annotations_final.csv and folders 0-f")
    s.add_argument("--out", required=True, help="the prepared folder to write (new, empty, or this same set)")
    s.add_argument("--scheme", choices=SCHEMES, default="folder", help="the split scheme (see `splits --help`)")
    s.add_argument("--top-k", type=_positive, default=50, help="how many of the most frequent tags (default 50)")
    s.add_argument("--sample-rate", type=_positive, default=SAMPLE_RATE, metavar="HZ",
                   help=f"decode at this rate (default {SAMPLE_RATE:,}, the paper's: 10 sub-clips of 34,950 samples); "
                        "any other rate keeps MTAT's 29.1 s per clip, e.g. 22050 for the sample-level models")
    s.add_argument("--workers", type=_positive, default=None, help="decoding processes (default: up to 4)")
    s.add_argument("--force", action="store_true", help=force)
    s.set_defaults(handler=cmd_prepare)

    s = command("train", "train a model on a prepared set",
                "Writes config.json, history.json, checkpoints/ and results.json (validation and test AUC) "
                "into --out. An interrupted run resumes when the same command is run again; --epochs can "
                "extend a finished run.")
    s.add_argument("--data", required=True, help="a prepared folder (see `rawtag prepare`)")
    s.add_argument("--model", default="base", choices=models, metavar="NAME",
                   help=f"the model: {', '.join(models) if models else 'see `rawtag train --help`'} (default base)")
    s.add_argument("--length", type=_positive, help="first layer's filter length, in samples (strided models)")
    s.add_argument("--stride", type=_positive, help="first layer's stride, in samples (strided models)")
    s.add_argument("--time-pool", choices=pools, help="global pooling over time")
    s.add_argument("--clip-pool", choices=pools, help="pooling of the 10 sub-clips' logits")
    s.add_argument("--profile", choices=tuple(PROFILES), default="paper",
                   help="the budget: smoke (seconds), quick (minutes on a CPU), paper (the paper's; default)")
    s.add_argument("--epochs", type=_positive, help="training epochs (default: the profile's)")
    s.add_argument("--batch-size", type=_positive, help="clips per batch (default: the model's protocol)")
    s.add_argument("--lr", type=_rate, help="learning rate, above 0 (default: the model's protocol)")
    s.add_argument("--seed", type=_non_negative, default=0, help="random seed, 0 or more (default 0)")
    s.add_argument("--normalization", choices=train_modes, default="dataset",
                   help="Eq. (1) min-max over the training split (dataset, default), per clip, or none")
    s.add_argument("--max-train-clips", type=_positive, help="train on at most this many clips")
    s.add_argument("--max-eval-clips", type=_positive, help="evaluate on at most this many clips")
    s.add_argument("--log-every", type=_positive, help="log the training loss every N iterations")
    s.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    s.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32 (TF32 matmuls on GPUs) or bf16 (bfloat16 autocast), recorded in config.json")
    s.add_argument("--out", required=True, help="the run folder (new, empty, or this same run to resume)")
    s.add_argument("--force", action="store_true", help="replace another run (other settings, more epochs) in --out")
    s.set_defaults(handler=cmd_train)

    s = command("evaluate", "macro ROC-AUC and PR-AUC of a run's best model",
                "Scores the run's checkpoints/best.pt on one split of its prepared set (or of --data).")
    s.add_argument("--run", required=True, help="a run folder written by `rawtag train`")
    s.add_argument("--split", choices=held_out, default="valid", help="the split to score (default valid)")
    s.add_argument("--data", default=None, help="another prepared folder with the same tags")
    s.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    s.set_defaults(handler=cmd_evaluate)

    s = command("tag", "the top tags of any audio file",
                "Any length, format, rate or channel count: decoded, cut into 29.1 s windows, averaged.")
    s.add_argument("files", nargs="+", help="audio files (MP3, WAV, FLAC, OGG, ...)")
    s.add_argument("--run", required=True, help="a run folder written by `rawtag train`")
    s.add_argument("--top", type=_positive, default=5, help="how many tags to print per file (default 5)")
    s.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    s.set_defaults(handler=cmd_tag)

    s = command("book", "execute the chapters (papermill) or build the HTML book (Jupyter Book)",
                "`book run` executes the notebooks with a profile's parameters; `book build` turns the executed "
                "notebooks into HTML.")
    s.add_argument("action", choices=["run", "build", "publish"],
                   help="run the chapters, build the HTML, or publish: point Colab buttons and install cells at "
                        "--repository")
    s.add_argument("--repository", metavar="URL", help="publish: the https URL of the repository readers use")
    s.add_argument("--profile", choices=tuple(PROFILES), default="quick",
                   help="smoke, quick (default) or paper")
    s.add_argument("--only", nargs="+", metavar="CHAPTER", help="chapters by number or name, e.g. 03")
    s.add_argument("--dataset", choices=DATASETS, help="default: the profile's")
    s.add_argument("--data-root", default="data", help="where data sets live (default data)")
    s.add_argument("--runs-root", default="runs", help="where training runs live (default runs)")
    s.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    s.add_argument("--executed", default="_build/executed", help="where executed chapters go (run) / come from")
    s.add_argument("--out", default=".", help="build: the HTML goes to OUT/_build/html")
    s.set_defaults(handler=cmd_book)
    return p


#: Commands that pick up where they stopped when run again; an interrupted one says so.
RESUMABLE = ("synth", "download", "prepare", "train", "book")


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def main(argv=None) -> int:
    """Run `rawtag ARGV...`; returns the exit status: 0, 2 with a one-line reason on bad input, 130 when
    interrupted (Ctrl-C or SIGTERM), 1 with a one-line report on a bug. With RAWTAG_TRACEBACK=1 every one of
    them is preceded by its traceback. Worker processes die with the command, even when it is killed.

    Chapter: 01_data
    """
    from .concurrent import guard_forks, sigterm_is_interrupt

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_model_names(argv)).parse_args(argv)
    guard_forks()  # worker processes die with the command
    try:
        with sigterm_is_interrupt():
            args.handler(args)
    except BaseException as e:  # each kind of failure is one line; the traceback too with RAWTAG_TRACEBACK=1
        code, message = _failure(e, args.command)
        if code is None:
            raise
        if os.environ.get("RAWTAG_TRACEBACK"):
            traceback.print_exc()
        print(f"rawtag {args.command}: {message}", file=sys.stderr)
        return code
    return 0


def _failure(e: BaseException, command: str) -> tuple[int | None, str]:
    """The exit status and one-line message for an exception a command raised: 2 for bad input (with the
    fix), 130 for an interruption, 1 for a bug; None for what is not ours to report (SystemExit)."""
    from .atomic import RESUME, DiskFull, InUse, is_full
    from .book import BookError
    from .data.audio import AudioError
    from .data.mtat import MTATError
    from .data.prepare import PrepareError
    from .data.synth import SynthError

    if isinstance(e, (ValueError, OSError, MTATError, PrepareError, AudioError, BookError, SynthError, InUse)):
        full = is_full(e) and not isinstance(e, DiskFull)
        return 2, f"error: {_one_line(e)}" + (f"; {RESUME}" if full else "")
    if isinstance(e, KeyboardInterrupt):
        return 130, "interrupted" + ("; run the same command again to resume" if command in RESUMABLE else "")
    if isinstance(e, BrokenExecutor):
        return 2, ("error: a worker process died (killed by the system, most often for lack of memory); rerun the "
                   "same command with fewer --workers to resume")
    if isinstance(e, Exception):
        return 1, (f"unexpected error: {type(e).__name__}: {_one_line(e)} (a bug: please report it; set "
                   f"RAWTAG_TRACEBACK=1 to see where it happened)")
    return None, ""


if __name__ == "__main__":
    sys.exit(main())

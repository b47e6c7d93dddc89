"""The command line: `python -m rawtag SUBCOMMAND ...` (also installed as `rawtag`).

Every subcommand answers --help, prints progress for long work, and exits non-zero with a one-line reason
on bad input. The README lists them; DESIGN.md holds the contract.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .profiles import PRECISIONS


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def cmd_synth(a):
    from .data.synth import write_synthetic

    out = write_synthetic(a.out, a.clips, seed=a.seed, workers=a.workers, label_drop=a.label_drop)
    print(f"{out}: {a.clips} synthetic clips in MTAT's format")


def cmd_download(a):
    from .data.mtat import BASE_URL, download

    download(a.root, base_url=a.base_url or BASE_URL)
    print(f"{a.root}: MTAT downloaded and verified")


def cmd_splits(a):
    from .data.mtat import read_annotations, splits

    result = splits(read_annotations(a.annotations), a.scheme, a.top_k)
    Path(a.json).write_text(json.dumps(result, indent=1))
    print(f"{a.json}: {len(result['tags'])} tags; train {len(result['train'])}, valid {len(result['valid'])}, "
          f"test {len(result['test'])}")


def cmd_prepare(a):
    from .data.prepare import prepare

    prepare(a.source, a.out, scheme=a.scheme, top_k=a.top_k, workers=a.workers)


def cmd_train(a):
    from .profiles import train_config
    from .train import fit

    params = {k: v for k, v in (("length", a.length), ("stride", a.stride), ("time_pool", a.time_pool),
                                ("clip_pool", a.clip_pool)) if v is not None}
    cfg = train_config(a.profile, a.model, params, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                       seed=a.seed, normalization=a.normalization, max_train_clips=a.max_train_clips,
                       max_eval_clips=a.max_eval_clips, log_every=a.log_every, device=a.device,
                       precision=a.precision)
    results = fit(a.data, a.out, cfg)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 reports
        return
    last = results["valid_last_epoch"]
    print(f"{a.out}: valid ROC-AUC {last['roc_auc']:.4f} at the last epoch ({last['epoch']}), "
          f"{results['valid']['roc_auc']:.4f} at the best epoch ({results['best_epoch']}, chosen on validation: "
          f"optimistic); valid PR-AUC {results['valid']['pr_auc']:.4f}" + (
              f"; test ROC-AUC {results['test']['roc_auc']:.4f} PR-AUC {results['test']['pr_auc']:.4f}"
              if results.get("test") else ""))


def cmd_evaluate(a):
    from .train import evaluate

    scores = evaluate(a.run, a.split, data=a.data, device=a.device)
    print(f"{a.split}: macro ROC-AUC {scores.roc_auc:.4f}  PR-AUC {scores.pr_auc:.4f}"
          + (f"  ({len(scores.excluded)} single-class tags left out)" if scores.excluded else ""))


def cmd_tag(a):
    from .train import load_run, pick_device, tag_audio

    from .data.audio import AudioError

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
    from . import book

    if a.action == "run":
        book.run(a.profile, a.only, out=a.executed, dataset=a.dataset, data_root=a.data_root,
                 runs_root=a.runs_root, device=a.device)
    else:
        book.build(a.executed, a.out)


def build_parser() -> argparse.ArgumentParser:
    from .data.mtat import SCHEMES

    p = argparse.ArgumentParser(prog="rawtag", description="End-to-end music auto-tagging from raw audio.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write the synthetic set in MTAT's on-disk format")
    s.add_argument("--out", required=True)
    s.add_argument("--clips", type=_positive, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=_positive, default=None, help="processes (default: all cores)")
    s.add_argument("--label-drop", type=float, default=0.1, help="chance of dropping each positive label")
    s.set_defaults(handler=cmd_synth)

    s = sub.add_parser("download", help="fetch MTAT (audio, annotations, clip info), verified and resumable")
    s.add_argument("--root", required=True)
    s.add_argument("--base-url", default=None, help="a mirror of the official folder")
    s.set_defaults(handler=cmd_download)

    s = sub.add_parser("splits", help="write the top-K tags and the train/valid/test clip lists as JSON")
    s.add_argument("--annotations", required=True)
    s.add_argument("--scheme", choices=SCHEMES, default="folder")
    s.add_argument("--top-k", type=_positive, default=50)
    s.add_argument("--json", required=True)
    s.set_defaults(handler=cmd_splits)

    s = sub.add_parser("prepare", help="decode audio once into an int16 memmap, labels and a manifest")
    s.add_argument("--source", required=True, help="folder with annotations_final.csv and folders 0-f")
    s.add_argument("--out", required=True)
    s.add_argument("--scheme", choices=SCHEMES, default="folder")
    s.add_argument("--top-k", type=_positive, default=50)
    s.add_argument("--workers", type=_positive, default=None)
    s.set_defaults(handler=cmd_prepare)

    s = sub.add_parser("train", help="train a model on a prepared set")
    s.add_argument("--data", required=True, help="a prepared folder")
    s.add_argument("--model", default="base")
    s.add_argument("--length", type=_positive)
    s.add_argument("--stride", type=_positive)
    s.add_argument("--time-pool", choices=["max", "mean"])
    s.add_argument("--clip-pool", choices=["max", "mean"])
    s.add_argument("--profile", choices=["smoke", "quick", "paper"], default="paper")
    s.add_argument("--epochs", type=_positive)
    s.add_argument("--batch-size", type=_positive)
    s.add_argument("--lr", type=float)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--normalization", choices=["dataset", "clip", "none"], default="dataset")
    s.add_argument("--max-train-clips", type=_positive)
    s.add_argument("--max-eval-clips", type=_positive)
    s.add_argument("--log-every", type=_positive, help="log the training loss every N iterations")
    s.add_argument("--device", default="auto")
    s.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32 (TF32 matmuls on GPUs) or bf16 (bfloat16 autocast), recorded in config.json")
    s.add_argument("--out", required=True, help="the run folder")
    s.set_defaults(handler=cmd_train)

    s = sub.add_parser("evaluate", help="macro ROC-AUC and PR-AUC of a run's best model")
    s.add_argument("--run", required=True)
    s.add_argument("--split", choices=["valid", "test"], default="valid")
    s.add_argument("--data", default=None, help="another prepared folder with the same tags")
    s.add_argument("--device", default="auto")
    s.set_defaults(handler=cmd_evaluate)

    s = sub.add_parser("tag", help="the top tags of any audio file")
    s.add_argument("files", nargs="+")
    s.add_argument("--run", required=True)
    s.add_argument("--top", type=_positive, default=5)
    s.add_argument("--device", default="auto")
    s.set_defaults(handler=cmd_tag)

    s = sub.add_parser("book", help="execute the chapters (papermill) or build the HTML book (Jupyter Book)")
    s.add_argument("action", choices=["run", "build"])
    s.add_argument("--profile", choices=["smoke", "quick", "paper"], default="quick")
    s.add_argument("--only", nargs="+", metavar="CHAPTER", help="chapters by number or name, e.g. 03")
    s.add_argument("--dataset", choices=["synthetic", "mtat"], help="default: the profile's")
    s.add_argument("--data-root", default="data")
    s.add_argument("--runs-root", default="runs")
    s.add_argument("--device", default="auto")
    s.add_argument("--executed", default="_build/executed", help="where executed chapters go (run) / come from")
    s.add_argument("--out", default=".", help="build: the HTML goes to OUT/_build/html")
    s.set_defaults(handler=cmd_book)
    return p


def main(argv=None) -> int:
    from .book import BookError
    from .data.audio import AudioError
    from .data.mtat import MTATError
    from .data.prepare import PrepareError

    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except (ValueError, OSError, MTATError, PrepareError, AudioError, BookError) as e:
        print(f"rawtag {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rawtag {args.command}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

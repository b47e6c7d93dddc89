"""Transfer to real music: score trained runs on a folder of real recordings against real-MTAT taggers.

    python benchmarks/transfer_bench.py RUN [RUN ...] [--music FOLDER] [--resamples 1000] [--band LOW-HIGH ...]

For each run (a `rawtag train --out` folder), tags every file of the folder (default: `shared/realmusic`
beside the project) with the run's best model and prints its macro ROC-AUC against the reference tagger's
labels (`rawtag.transfer`), with a 95 % bootstrap interval over files, beside the ceiling (a second tagger
trained on the real MTAT, scored on the same labels), then the per-tag AUCs side by side.

Each `--band` (Hz: `-2000` keeps what lies below 2 kHz, `200-` removes what lies below 200 Hz, `200-2000`
keeps that band) tags the files again through that filter (`rawtag.transfer.band_pass`) and prints the
run's score and its paired change from the unfiltered files: which band of real music the tags come from.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common


def parse_band(text: str) -> tuple[float | None, float | None]:
    """'LOW-HIGH' in Hz, either side may be empty: '-2000', '200-', '200-2000'."""
    low, sep, high = text.partition("-")
    try:
        if not sep or not (low or high):
            raise ValueError
        return (float(low) if low else None), (float(high) if high else None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--band {text!r}: expected LOW-HIGH in Hz, e.g. -2000, 200- or "
                                         f"200-2000") from None


def main(argv=None) -> int:
    from rawtag import transfer
    from rawtag.workspace import shared_folder

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders (rawtag train --out)")
    parser.add_argument("--music", help="a folder of real recordings with reference.tsv (default: shared/realmusic)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--band", type=parse_band, action="append", default=[],
                        help="also score through this band, LOW-HIGH in Hz (e.g. -2000, 200-); repeatable")
    args = parser.parse_args(argv)
    music = args.music or shared_folder("realmusic")
    if music is None:
        parser.error("no folder of real music: pass --music FOLDER (one holding reference.tsv)")
    reference = transfer.read_reference(music)
    print(f"# transfer to real music: {Path(music).name}; {common.machine()}")
    scores = {}
    for run in args.runs:
        start = time.perf_counter()
        probs, vocabulary = transfer.tag_files(run, reference)
        scores[run] = s = transfer.score(reference, vocabulary, probs, resamples=args.resamples)
        print(f"{run}: macro ROC-AUC {s.auc} over {len(s.tags)} tags; ceiling (real-MTAT tagger) {s.ceiling}; "
              f"{time.perf_counter() - start:.1f} s", flush=True)
        for low, high in args.band:
            filtered, _ = transfer.tag_files(run, reference, effect=transfer.band_pass(low, high))
            band = transfer.score(reference, vocabulary, filtered, resamples=args.resamples)
            change = transfer.paired_change(reference, vocabulary, filtered, probs, resamples=args.resamples)
            edge = f"{high:g}" if high else "Nyquist"
            print(f"  band {low or 0:g}-{edge} Hz: macro ROC-AUC {band.auc}; change from the "
                  f"unfiltered files {change.value:+.4f} [{change.low:+.4f}, {change.high:+.4f}]; per tag "
                  + ", ".join(f"{t} {v:.3f}" for t, v in band.per_tag.items()), flush=True)
    tags = sorted({t for s in scores.values() for t in s.tags})
    print("\n| tag | files with it | " + " | ".join(Path(r).name for r in scores) + " | ceiling |")
    print("|---|---|" + "---|" * (len(scores) + 1))
    first = next(iter(scores.values()))
    for tag in tags:
        cells = [f"{s.per_tag[tag]:.3f}" if tag in s.per_tag else "" for s in scores.values()]
        positives = dict(zip(first.tags, first.positives.tolist(), strict=True)).get(tag, "")
        ceiling = first.ceiling_per_tag.get(tag, float("nan"))
        print(f"| {tag} | {positives} | " + " | ".join(cells) + f" | {ceiling:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

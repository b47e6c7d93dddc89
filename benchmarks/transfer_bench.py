"""Transfer to real music: score trained runs on a folder of real recordings against real-MTAT taggers.

    python benchmarks/transfer_bench.py RUN [RUN ...] [--music FOLDER] [--resamples 1000]

For each run (a `rawtag train --out` folder), tags every file of the folder (default: `shared/realmusic`
beside the project) with the run's best model and prints its macro ROC-AUC against the reference tagger's
labels (`rawtag.transfer`), with a 95 % bootstrap interval over files, beside the ceiling (a second tagger
trained on the real MTAT, scored on the same labels), then the per-tag AUCs side by side.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common


def main(argv=None) -> int:
    from rawtag import transfer
    from rawtag.workspace import shared_folder

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders (rawtag train --out)")
    parser.add_argument("--music", help="a folder of real recordings with reference.tsv (default: shared/realmusic)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    args = parser.parse_args(argv)
    music = args.music or shared_folder("realmusic")
    if music is None:
        parser.error("no folder of real music: pass --music FOLDER (one holding reference.tsv)")
    print(f"# transfer to real music: {Path(music).name}; {common.machine()}")
    scores = {}
    for run in args.runs:
        start = time.perf_counter()
        scores[run] = transfer.score_run(run, music, resamples=args.resamples)
        s = scores[run]
        print(f"{run}: macro ROC-AUC {s.auc} over {len(s.tags)} tags; ceiling (real-MTAT tagger) {s.ceiling}; "
              f"{time.perf_counter() - start:.1f} s", flush=True)
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

"""Two banks, one score: the stand-in played on TimGM6mb (`rawtag synth`'s default) and on another, each trained
over seeds and scored on both yardsticks.

    python benchmarks/soundfont_bench.py --soundfont FluidR3_GM \\
        [--clips 1200] [--seeds 0 1 2] [--models base improved] [--profile quick] [--root DIR] [--music FOLDER]

For each bank (TimGM6mb, the default, and `--soundfont`) it writes the synthetic set at seed 0 with
`rawtag synth [--soundfont]`, prepares it (the paper's split), trains every model with every seed on the
profile's budget (the base CNN for the profile's `reference_epochs`, as chapter 03's reference run), and
scores each run on its own stand-in's validation clips and on real music (`rawtag.transfer`, against the
real-MTAT tagger, with a bootstrap interval over files). Then, per model, the other bank minus the default,
paired by seed, with a t interval over the seeds (`rawtag.metrics.paired_difference`). Everything is kept
under `--root`, so a second run reads back what the first trained. Measured figures are in
`benchmarks/README.md`, "Another SoundFont".
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common


def run_cli(*args) -> None:
    from rawtag.__main__ import main

    code = main([str(a) for a in args])
    if code != 0:
        raise SystemExit(f"rawtag {' '.join(map(str, args))} exited {code}")


def main(argv=None) -> int:
    from rawtag import metrics, transfer
    from rawtag.profiles import profile
    from rawtag.runs import Run
    from rawtag.workspace import shared_folder

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--soundfont", required=True,
                        help="the other bank: FluidR3_GM (the book's) or a General MIDI .sf2 file")
    parser.add_argument("--clips", type=int, default=1200, help="clips in each stand-in (default 1200)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default 0 1 2)")
    parser.add_argument("--models", nargs="+", default=["base", "improved"], help="models (default base improved)")
    parser.add_argument("--profile", default="quick", help="the training budget (default quick)")
    parser.add_argument("--root", default="soundfont-bench", help="where sets and runs are kept")
    parser.add_argument("--music", help="a folder of real recordings with reference.tsv (default: shared/realmusic)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    args = parser.parse_args(argv)
    music = args.music or shared_folder("realmusic")
    if music is None:
        parser.error("no folder of real music: pass --music FOLDER (one holding reference.tsv)")
    reference = transfer.read_reference(music)
    root = Path(args.root)
    other = Path(args.soundfont).stem
    banks = {"TimGM6mb": ("default", None), other: (other, args.soundfont)}  # label: (folder, file)
    print(f"machine: {common.machine()}", flush=True)

    rows, scores = [], {}
    for bank, (name, path) in banks.items():
        source, prepared = root / name / "source", root / name / "prepared"
        run_cli("synth", "--out", source, "--clips", args.clips, "--seed", 0,
                *(["--soundfont", path] if path else []))
        run_cli("prepare", "--source", source, "--out", prepared, "--scheme", "paper")
        for model in args.models:
            epochs = profile(args.profile, model).get("reference_epochs") if model == "base" else None
            for seed in args.seeds:
                out = root / name / f"{model}-seed{seed}"
                run_cli("train", "--data", prepared, "--model", model, "--profile", args.profile, "--seed", seed,
                        *(["--epochs", epochs] if epochs else []), "--out", out)
                probs, vocabulary = transfer.tag_files(out, reference)
                real = transfer.score(reference, vocabulary, probs, resamples=args.resamples)
                valid = Run(out).valid_last
                scores[bank, model, seed] = (valid, real.auc.value)
                rows.append([bank, model, seed, f"{valid:.4f}", f"{real.auc}"])
    print(f"\nceiling (real-MTAT tagger): {real.ceiling}; validation is each stand-in's own clips (synthetic)\n")
    print(common.table(["bank", "model", "seed", "validation ROC-AUC (synthetic, last epoch)",
                        "real music: macro ROC-AUC [95 %]"], rows))
    default = next(iter(banks))
    diffs = []
    for model in args.models:
        for i, what in ((0, "validation (two different stand-ins)"), (1, "real music")):
            a = [scores[other, model, s][i] for s in args.seeds]
            b = [scores[default, model, s][i] for s in args.seeds]
            d = metrics.paired_difference(a, b)
            interval = f"[{d.low:+.4f}, {d.high:+.4f}]" if len(args.seeds) > 1 else "(one seed: no interval)"
            diffs.append([model, what, f"{d.value:+.4f} {interval}"])
    print(f"\n{other} minus {default}, paired by seed (t interval over {len(args.seeds)} seeds):\n")
    print(common.table(["model", "yardstick", "difference [95 %]"], diffs))
    return 0


if __name__ == "__main__":
    sys.exit(main())

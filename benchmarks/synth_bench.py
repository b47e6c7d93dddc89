"""Synthesis speed: rendering a clip against encoding it, rawtag's MP3 encoder against libsndfile's.

    python benchmarks/synth_bench.py [--clips 20] [--seed 0]

On the same planned clips of the synthetic set (one process, the notes cache warmed by a first clip,
untimed), for each clip: render its audio (`builder.render_plan`), then encode it as 16 kHz 32 kbit/s
constant-rate MP3 twice:
- rawtag: `builder.encode_mp3` (LAME through `lameenc`, quality 7);
- baseline: libsndfile's LAME (`soundfile.write(..., format="MP3", compression_level=0.85)`), the encoder
  rawtag used before 2026-12-03.
Prints seconds per clip for each step, bytes per clip, and each encoding's error: the decoded MP3 aligned
to the rendered audio (the encoder's delay found by cross-correlation), as a signal-to-error ratio in dB.
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common


def libsndfile_mp3(audio: np.ndarray, rate: int) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="MP3", subtype="MPEG_LAYER_III", bitrate_mode="CONSTANT",
             compression_level=0.85)
    return buffer.getvalue()


def error_db(audio: np.ndarray, mp3: bytes) -> float:
    """Signal-to-error ratio of the decoded `mp3` against `audio`, after removing the encoder's delay."""
    import soundfile as sf

    decoded, _ = sf.read(io.BytesIO(mp3), dtype="float32")
    window = audio[: 2 * 16_000]
    delay = max(range(0, 3_000), key=lambda d: float(np.dot(decoded[d:d + len(window)], window)))
    n = min(len(audio), len(decoded) - delay)
    error = decoded[delay:delay + n] - audio[:n]
    return float(10 * np.log10(np.sum(audio[:n] ** 2) / max(np.sum(error ** 2), 1e-12)))


def main(argv=None) -> int:
    from rawtag.data.synth import SR, builder

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=20, help="clips to time (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="the synthetic set's seed (default 0)")
    args = parser.parse_args(argv)
    items = builder.plan(args.clips + 1, args.seed, 0.1)
    builder.render_plan(items[0])  # renders the notes the first clip needs into the cache; untimed
    seconds = {"render": [], "rawtag": [], "baseline": []}
    sizes = {"rawtag": [], "baseline": []}
    errors = {"rawtag": [], "baseline": []}
    for item in items[1:]:
        started = time.perf_counter()
        audio = builder.render_plan(item)
        seconds["render"].append(time.perf_counter() - started)
        for name, encode in (("rawtag", builder.encode_mp3), ("baseline", lambda a: libsndfile_mp3(a, SR))):
            started = time.perf_counter()
            mp3 = encode(audio)
            seconds[name].append(time.perf_counter() - started)
            sizes[name].append(len(mp3))
            errors[name].append(error_db(audio, mp3))
    print(f"# synthesis: {args.clips} clips of 29.1 s (seed {args.seed}), one process; {common.machine()}")
    print("| step | seconds per clip (mean) | bytes per clip | signal-to-error (dB, median) |")
    print("|---|---|---|---|")
    print(f"| render (score, sampler, mix) | {np.mean(seconds['render']):.3f} | | |")
    for name, label in (("rawtag", "encode: rawtag (lameenc, quality 7)"),
                        ("baseline", "encode: baseline (libsndfile, level 0.85)")):
        print(f"| {label} | {np.mean(seconds[name]):.3f} | {np.mean(sizes[name]):,.0f} | "
              f"{np.median(errors[name]):.1f} |")
    whole = {name: np.mean(seconds["render"]) + np.mean(seconds[name]) for name in ("rawtag", "baseline")}
    print(f"\nper clip, render + encode: rawtag {whole['rawtag']:.3f} s, baseline {whole['baseline']:.3f} s "
          f"({whole['baseline'] / whole['rawtag']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Preparation speed: `rawtag prepare` against the research-code way and against decoding alone.

    python benchmarks/prepare_bench.py [--clips 200] [--workers 1 2] [--root /tmp/rawtag-bench]

On the same MTAT-format MP3s (a synthetic set, written first and reused), each measured in its own process:
- decode only (the floor): soundfile decode + soxr resample to 12 kHz, nothing written, N processes;
- `rawtag prepare` with N workers: decode, fix length, int16 into one memmap, labels, manifest;
- baseline: a loop of `librosa.load(path, sr=12000)` writing one float32 `.npy` per clip, one process,
  as research repositories on this task do (librosa's one-off compilation is warmed up first, untimed).
Prints clips/s, the ratio to decode-only at the same worker count, peak memory and bytes written.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common


def _decode(path: str) -> int:
    from rawtag.data.audio import SAMPLE_RATE, load

    return len(load(path, SAMPLE_RATE))


def run_one(method: str, source: Path, out: Path, workers: int) -> dict:
    from rawtag.data import mtat

    paths = [str(source / p) for p in mtat.read_annotations(source / mtat.ANNOTATIONS).mp3_paths]
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    if method == "baseline":
        import librosa
        import numpy as np

        librosa.load(paths[0], sr=12000)  # numba compilation happens once; not part of the per-clip cost
        started = time.perf_counter()
        for i, p in enumerate(paths):
            y, _ = librosa.load(p, sr=12000)
            np.save(out / f"{i}.npy", y.astype(np.float32))
    elif method == "decode-only":
        started = time.perf_counter()
        if workers == 1:
            for p in paths:
                _decode(p)
        else:
            with ProcessPoolExecutor(workers) as pool:
                list(pool.map(_decode, paths, chunksize=4))
    else:
        from rawtag.data.prepare import prepare

        started = time.perf_counter()
        prepare(source, out / "prepared", workers=workers, progress=False)
    seconds = time.perf_counter() - started
    written = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {"seconds": seconds, "clips": len(paths), "bytes": written}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=int, default=200)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--root", default="/tmp/rawtag-bench")
    p.add_argument("--one", nargs=3, metavar=("METHOD", "SOURCE", "WORKERS"), help=argparse.SUPPRESS)
    a = p.parse_args()
    root = Path(a.root)
    if a.one:
        method, source, workers = a.one
        common.report(run_one(method, Path(source), root / f"out-{method}-{workers}", int(workers)))
        return
    source = common.synthetic_source(root, a.clips)
    print(f"machine: {common.machine()}")
    print(f"data: {a.clips} synthetic clips in MTAT's format (29.1 s, 16 kHz, 32 kbit/s MP3) in {source}\n")
    rows = []
    for workers in a.workers:
        floor = common.measure_in_subprocess(__file__, ["decode-only", str(source), str(workers), "--root", a.root])
        ours = common.measure_in_subprocess(__file__, ["rawtag", str(source), str(workers), "--root", a.root])
        for name, fig in (("decode only (floor)", floor), ("rawtag prepare", ours)):
            rows.append([name, workers, fig["seconds"], fig["clips"] / fig["seconds"],
                         f"{fig['seconds'] / floor['seconds']:.2f}x", fig["peak_rss_mib"], fig["bytes"] / 2**20])
    base = common.measure_in_subprocess(__file__, ["baseline", str(source), "1", "--root", a.root])
    floor1 = next(r for r in rows if r[0].startswith("decode") and r[1] == 1) if 1 in a.workers else None
    ratio = f"{base['seconds'] / floor1[2]:.2f}x" if floor1 else "n/a"
    rows.append(["baseline: librosa.load + float32 .npy per clip", 1, base["seconds"], base["clips"] / base["seconds"],
                 ratio, base["peak_rss_mib"], base["bytes"] / 2**20])
    print(common.table(["method", "workers", "seconds", "clips/s", "time / decode-only (same workers)",
                        "peak RSS MiB", "written MiB"], rows))


if __name__ == "__main__":
    main()

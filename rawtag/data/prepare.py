"""Preparation: decode every clip once into ONE int16 memmap, with labels, per-clip min/max and a manifest.

Taught in chapter 01 (data). A prepared folder holds:

- `clips.int16`: the audio, int16, shape [N, 349500] (12 kHz, 10 sub-clips of 34,950 samples);
- `labels.npy`: uint8 [N, K], the top-K tags (synonym-merged tags for scheme `paper`);
- `rowstats.npy`: int16 [N, 2], each clip's min and max (normalization reads these instead of the audio);
- `manifest.json`, written last: parameters, tags, clips, split rows, skipped clips with reasons.

A folder without `manifest.json` is not prepared. While running, progress is kept in `.prepare/`: the
audio goes to `clips.int16.partial`, and each finished row is appended to `.prepare/done.log` after its
bytes are written, so a killed run resumes where it stopped and ends byte-identical to an uninterrupted one.
"""
from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np

from ..atomic import replacing, write_text
from . import audio, mtat

FORMAT_VERSION = 1
CLIPS_FILE = "clips.int16"
MANIFEST = "manifest.json"
MIN_SECONDS = 20.0  # shorter decoded audio is treated as truncated and skipped


class PrepareError(RuntimeError):
    """A preparation that cannot go on; the message says what to do."""


def _decode_row(path: str, sample_rate: int, clip_samples: int, min_seconds: float):
    """Worker: (int16 samples or None, reason for skipping, decoded length in samples)."""
    try:
        x = audio.load(path, sample_rate)
    except audio.AudioError as e:
        return None, str(e).split(": ", 1)[-1], 0
    if len(x) < min_seconds * sample_rate:
        return None, f"truncated: {len(x) / sample_rate:.2f} s of audio, expected {clip_samples / sample_rate:.2f} s", len(x)
    return audio.to_int16(audio.fix_length(x, clip_samples)), "", len(x)


def prepare(source: str | os.PathLike, out: str | os.PathLike, scheme: str = "folder", top_k: int = 50,
            workers: int | None = None, sample_rate: int = audio.SAMPLE_RATE, progress: bool = True,
            min_seconds: float = MIN_SECONDS) -> Path:
    """Decode MTAT (or the synthetic set, same format) at `source` into a prepared folder `out`.

    Parallel across `workers` processes, memory bounded (a few clips per worker in flight), resumable,
    and idempotent: a rerun with the same parameters does nothing. Corrupt, empty, missing or truncated
    files are skipped and listed with their reason in the manifest; stereo and other rates are converted.
    Chapter 01.
    """
    from tqdm.auto import tqdm

    source, out = Path(source), Path(out)
    ann = mtat.read_annotations(source / mtat.ANNOTATIONS)
    split = mtat.splits(ann, scheme, top_k)
    paths = split["train"] + split["valid"] + split["test"]
    if not paths:
        raise PrepareError(f"{source}: no clip has one of the top-{top_k} tags; nothing to prepare")
    names = {"train": split["train"], "valid": split["valid"], "test": split["test"]}
    params = {"format": FORMAT_VERSION, "scheme": scheme, "top_k": top_k, "sample_rate": sample_rate,
              "clip_samples": audio.CLIP_SAMPLES, "subclips": audio.SUBCLIPS, "min_seconds": min_seconds,
              "annotations_sha256": mtat.sha256_of(source / mtat.ANNOTATIONS), "clips": len(paths)}

    manifest_path = out / MANIFEST
    if manifest_path.exists():
        old = json.loads(manifest_path.read_text())
        if old.get("params") == params:
            if progress:
                print(f"{out}: already prepared with these parameters ({len(paths)} clips); nothing to do")
            return out
        raise PrepareError(f"{out} holds a set prepared with other parameters; choose another --out or delete it")
    work = out / ".prepare"
    work.mkdir(parents=True, exist_ok=True)
    params_path = work / "params.json"
    if params_path.exists() and json.loads(params_path.read_text()) != params:
        raise PrepareError(f"{out} holds an unfinished preparation with other parameters; rerun it with its own "
                           f"parameters to resume it ({params_path}), or delete {out}")
    write_text(params_path, json.dumps(params, sort_keys=True))

    n, length = len(paths), audio.CLIP_SAMPLES
    row_bytes = length * 2
    partial = out / (CLIPS_FILE + ".partial")
    log_path = work / "done.log"
    done = _read_log(log_path)
    with open(partial, "ab"):
        pass
    if os.path.getsize(partial) != n * row_bytes:
        os.truncate(partial, n * row_bytes)  # sparse: rows not yet written read as zeros

    todo = [i for i in range(n) if i not in done]
    workers = max(1, workers or min(4, os.cpu_count() or 1))
    fd = os.open(partial, os.O_WRONLY)
    log = open(log_path, "a", buffering=1)
    try:
        with tqdm(total=n, initial=n - len(todo), unit="clip", desc="prepare", disable=not progress) as bar:
            for i, (samples, reason, decoded) in _decode_all(todo, paths, source, sample_rate, length,
                                                             min_seconds, workers):
                if samples is None:
                    done[i] = ("skip", reason)
                    log.write(f"{i}\tskip\t{reason}\n")
                else:
                    os.pwrite(fd, samples.tobytes(), i * row_bytes)
                    done[i] = ("ok", int(samples.min()), int(samples.max()), decoded)
                    log.write(f"{i}\tok\t{done[i][1]}\t{done[i][2]}\t{decoded}\n")
                bar.update()
        os.fsync(fd)
    finally:
        os.close(fd)
        log.close()

    labels = mtat.label_matrix(ann, split["tags"], paths, scheme)
    rowstats = np.zeros((n, 2), np.int16)
    skipped, padded = [], []
    row_split = {p: s for s, ps in names.items() for p in ps}
    for i, p in enumerate(paths):
        entry = done[i]
        if entry[0] == "skip":
            skipped.append({"row": i, "path": p, "split": row_split[p], "reason": entry[1]})
            continue
        rowstats[i] = entry[1:3]
        if entry[3] < length - sample_rate:  # more than a second of padding
            padded.append({"row": i, "path": p, "seconds": round(entry[3] / sample_rate, 3)})
    bad = {s["row"] for s in skipped}
    manifest = {
        "params": params,
        "tags": split["tags"],
        "shape": [n, length],
        "paths": paths,
        "splits": {s: [i for i, p in enumerate(paths) if row_split[p] == s and i not in bad] for s in names},
        "skipped": skipped,
        "padded": padded,
    }
    for name, array in (("labels.npy", labels), ("rowstats.npy", rowstats)):
        with replacing(out / name) as tmp:
            np.save(tmp, array)
    os.replace(partial, out / CLIPS_FILE)
    write_text(manifest_path, json.dumps(manifest, indent=1))
    shutil.rmtree(work)
    if progress:
        counts = ", ".join(f"{s} {len(r)}" for s, r in manifest["splits"].items())
        print(f"{out}: prepared {n - len(skipped)} clips ({counts}); skipped {len(skipped)}")
        for s in skipped:
            print(f"  skipped {s['path']}: {s['reason']}")
    return out


def _read_log(path: Path) -> dict:
    """Rows finished by an earlier run. A last line cut by a kill (no newline) is ignored."""
    done = {}
    if not path.exists():
        return done
    text = path.read_text()
    for line in text.split("\n")[:-1]:  # the part after the last newline is incomplete
        f = line.split("\t")
        if f[1] == "skip":
            done[int(f[0])] = ("skip", f[2])
        else:
            done[int(f[0])] = ("ok", int(f[2]), int(f[3]), int(f[4]))
    return done


def _decode_all(rows, paths, source, sample_rate, length, min_seconds, workers):
    """Yield (row, result) as clips finish; at most 2 x workers clips in flight (bounded memory)."""
    args = lambda i: (str(source / paths[i]), sample_rate, length, min_seconds)  # noqa: E731
    if workers == 1:
        for i in rows:
            yield i, _decode_row(*args(i))
        return
    pending, queue = {}, iter(rows)
    with ProcessPoolExecutor(workers) as pool:
        while True:
            while len(pending) < 2 * workers:
                i = next(queue, None)
                if i is None:
                    break
                pending[pool.submit(_decode_row, *args(i))] = i
            if not pending:
                return
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield pending.pop(future), future.result()


class PreparedSet:
    """A prepared folder, opened read-only: audio memmap, labels, per-clip min/max, manifest. Chapter 01."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        manifest = self.path / MANIFEST
        if not manifest.exists():
            hint = " (an unfinished preparation: rerun `rawtag prepare` to resume it)" if (
                self.path / ".prepare").exists() else " (run `rawtag prepare --source SRC --out DIR` first)"
            raise PrepareError(f"{self.path} is not a prepared data folder: no {MANIFEST}{hint}")
        self.manifest = json.loads(manifest.read_text())
        self.tags: list[str] = self.manifest["tags"]
        self.paths: list[str] = self.manifest["paths"]
        self.sample_rate: int = self.manifest["params"]["sample_rate"]
        self.clips = np.memmap(self.path / CLIPS_FILE, dtype=np.int16, mode="r",
                               shape=tuple(self.manifest["shape"]))
        self.labels = np.load(self.path / "labels.npy")
        self.rowstats = np.load(self.path / "rowstats.npy")

    def rows(self, split: str) -> np.ndarray:
        if split not in self.manifest["splits"]:
            raise PrepareError(f"unknown split {split!r}; choose one of {', '.join(self.manifest['splits'])}")
        return np.asarray(self.manifest["splits"][split], dtype=np.int64)

    def __repr__(self):
        counts = ", ".join(f"{s}={len(r)}" for s, r in self.manifest["splits"].items())
        return f"PreparedSet({str(self.path)!r}, {len(self.tags)} tags, {counts})"

"""Preparation: decode every clip once into ONE int16 memmap, with labels, per-clip min/max and a manifest.

Taught in chapter 01 (data). A prepared folder holds:

- `clips.int16`: the audio, int16, shape [N, 349500] (12 kHz, 10 sub-clips of 34,950 samples);
- `labels.npy`: uint8 [N, K], the top-K tags (synonym-merged tags for scheme `paper`);
- `rowstats.npy`: int16 [N, 2], each clip's min and max (normalization reads these instead of the audio);
- `manifest.json`, written last: parameters, tags, clips, split rows, skipped clips with reasons, and the
  sizes of the three data files (a truncated or deleted one is named, and `prepare` makes the set again).

A folder without `manifest.json` is not prepared. While running, progress is kept in `.prepare/`: the
audio goes to `clips.int16.partial`, and each finished row is appended to `.prepare/done.log` after all its
bytes are written, so a killed run resumes where it stopped and ends byte-identical to an uninterrupted one.
The commit order makes a half-finished folder impossible to take for a finished one: labels and row
statistics, then the rename of the audio to `clips.int16`, then the manifest, then `.prepare/` is removed;
a rerun after a kill (or a full disk) at any of these steps resumes from the audio already there.

Chapter: 01_data
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import (
    RESUME,
    free_bytes,
    human,
    is_full,
    locked,
    pwrite_all,
    read_json,
    replacing,
    require_space,
    write_text,
)
from ..concurrent import finished, worker_pool
from ..progress import counter
from . import audio, mtat
from .download import sha256_of

FORMAT_VERSION = 1
CLIPS_FILE = "clips.int16"
MANIFEST = "manifest.json"
WORK = ".prepare"  # progress of an unfinished preparation
MIN_SECONDS = 20.0  # shorter decoded audio is treated as truncated and skipped


class PrepareError(RuntimeError):
    """A preparation that cannot go on; the message says what to do.

    Chapter: 01_data
    """


def _decode_row(path: str, sample_rate: int, clip_samples: int, min_seconds: float, source: str):
    """Worker: (int16 samples or None, reason for skipping, decoded length in samples). A path that leads
    out of `source` (the real path of the source folder) through a symbolic link is not read."""
    if os.path.commonpath([os.path.realpath(path), source]) != source:
        return None, "a symbolic link to a file outside the source folder: not read", 0
    try:
        x = audio.load(path, sample_rate)
    except audio.AudioError as e:
        return None, str(e).split(": ", 1)[-1], 0
    if len(x) < min_seconds * sample_rate:
        expected = f"expected {clip_samples / sample_rate:.2f} s"
        return None, f"truncated: {len(x) / sample_rate:.2f} s of audio, {expected}", len(x)
    return audio.to_int16(audio.fix_length(x, clip_samples)), "", len(x)


def prepare(source: str | os.PathLike, out: str | os.PathLike, scheme: str = "folder", top_k: int = 50,
            workers: int | None = None, sample_rate: int = audio.SAMPLE_RATE, progress: bool = True,
            min_seconds: float = MIN_SECONDS, force: bool = False, only: list[str] | None = None) -> Path:
    """Decode MTAT (or the synthetic set, same format) at `source` into a prepared folder `out`.

    Parallel across `workers` processes, memory bounded (a few clips per worker in flight), resumable,
    and idempotent: a rerun with the same parameters does nothing. Corrupt, empty, missing or truncated
    files are skipped and listed with their reason in the manifest; stereo and other rates are converted.
    `out` must be new, empty, or a preparation (finished or not) with the same parameters; `force`
    replaces a preparation with other parameters, or writes into a folder that holds other files.
    `sample_rate` other than the paper's 12 kHz stores MTAT's 29.1 s per clip (`audio.clip_samples`); `only`
    keeps just these clips (paths as in the annotations), each in its own split: chapter 07 prepares its
    22,050 Hz set for the clips it trains on, not all of MTAT.

    The steps: plan (clips, splits, parameters), lock and claim `out` (a second preparation into it is
    refused while the first runs), open the data file (resuming its rows), decode the missing rows, write
    labels, row statistics and, last, the manifest.

    Chapter: 01_data
    """
    source, out = Path(source), Path(out)
    plan = _plan(source, scheme, top_k, sample_rate, min_seconds, only)
    with locked(out, "prepare"):  # one preparation at a time in a folder
        if not _claim(out, plan, force, progress):
            _fill(source, out, plan, workers, progress)
    return out


def _fill(source: Path, out: Path, plan: "_Plan", workers: int | None, progress: bool) -> None:
    """Decode the rows not done yet into the claimed folder `out`, then commit the set (manifest last)."""
    n, row_bytes = len(plan.paths), plan.length * 2
    data, done = _open_rows(out, n, row_bytes)
    todo = [i for i in range(n) if i not in done]
    require_space(out, len(todo) * row_bytes + n * (len(plan.split["tags"]) + 4 + 300),
                  f"preparing {len(todo):,} clips")
    try:
        _decode_rows(data, done, todo, plan, source, workers, progress)
        manifest = _write_manifest(out, data, done, plan)
    except OSError as e:
        if not is_full(e):
            raise
        left = human((n - len(done)) * row_bytes) if len(done) < n else ""
        raise PrepareError(f"{out}: disk full after {len(done):,} of {n:,} clips ({human(free_bytes(out))} free"
                           + (f"; about {left} more is needed" if left else "") + f"); {RESUME}") from e
    shutil.rmtree(out / WORK)
    if progress:
        _report(out, manifest, plan)


@dataclass
class _Plan:
    """What a preparation will hold: the annotations, the splits and the parameters its manifest records."""

    ann: mtat.Annotations
    split: dict
    paths: list
    outside: list
    params: dict
    length: int

    @property
    def names(self) -> dict:
        return {s: self.split[s] for s in ("train", "valid", "test")}


def _plan(source: Path, scheme: str, top_k: int, sample_rate: int, min_seconds: float, only) -> _Plan:
    """Read the annotations, pick the top tags and the splits (kept to `only` if given), and the parameters."""
    ann = mtat.read_annotations(source / mtat.ANNOTATIONS)
    split = mtat.splits(ann, scheme, top_k)
    outside = mtat.outside_folders(ann)
    paths = split["train"] + split["valid"] + split["test"]
    if not paths:
        why = (f"; {len(outside)} of its {len(ann.mp3_paths)} clips are outside folders 0-f (e.g. {outside[0]!r})"
               if outside else "")
        raise PrepareError(f"{source}: no clip in folders 0-f has one of the top-{top_k} tags; nothing to "
                           f"prepare{why}")
    length = audio.clip_samples(sample_rate)
    if only is not None:
        if not only:
            raise PrepareError("only=[] keeps no clip: nothing to prepare; pass only=None for every clip, or the "
                               "paths of the clips to keep")
        unknown = sorted(set(only) - set(paths))
        if unknown:
            raise PrepareError(f"{len(unknown)} clip(s) asked for are in no split of scheme {scheme!r} "
                               f"(e.g. {unknown[0]!r}); pass paths as annotations_final.csv names them")
        keep = set(only)
        split = {**split, **{s: [p for p in split[s] if p in keep] for s in ("train", "valid", "test")}}
        paths = split["train"] + split["valid"] + split["test"]
    params = {"format": FORMAT_VERSION, "scheme": scheme, "top_k": top_k, "sample_rate": sample_rate,
              "clip_samples": length, "subclips": audio.SUBCLIPS if length == audio.CLIP_SAMPLES else None,
              "min_seconds": min_seconds, "annotations_sha256": sha256_of(source / mtat.ANNOTATIONS),
              "clips": len(paths)}
    if only is not None:
        params["only_sha256"] = hashlib.sha256("\n".join(sorted(only)).encode()).hexdigest()
    return _Plan(ann, split, paths, outside, params, length)


def _claim(out: Path, plan: _Plan, force: bool, progress: bool) -> bool:
    """Make `out` ready for this preparation; True when it is already finished with the same parameters.
    Another set, or an unfinished one with other parameters, is refused unless `force`."""
    params, manifest_path, work = plan.params, out / MANIFEST, out / WORK
    if manifest_path.exists():  # the manifest is written last: with it, the folder is a finished preparation
        old = _json_or_none(manifest_path)
        old = old if isinstance(old, dict) and isinstance(old.get("params"), dict) else None
        damage = _damage(out, old) if old is not None and old["params"] == params else ""
        if old is not None and old["params"] == params and not damage:
            shutil.rmtree(work, ignore_errors=True)  # left by a run killed after its manifest was written
            if progress:
                print(f"{out}: already prepared with these parameters ({len(plan.paths)} clips); nothing to do")
            return True
        if damage and progress:  # our own set, damaged: made again from its source
            print(f"{out}: {damage}; preparing it again")
        elif not damage and not force:
            differ = ", ".join(k for k in params if (old or {}).get("params", {}).get(k) != params[k])
            raise PrepareError(f"{out} holds a set prepared with other parameters ({differ or 'unreadable manifest'});"
                               f" choose another --out, or pass --force to replace it")
        _remove_prepared(out)
    elif not work.exists():
        _check_new_folder(out, force)
        require_space(out, len(plan.paths) * (plan.length * 2 + len(plan.split["tags"]) + 4 + 300),
                      f"preparing {len(plan.paths):,} clips")  # before the folder is made
        _remove_prepared(out)  # with --force: files of an unknown or damaged set, named as ours
    work.mkdir(parents=True, exist_ok=True)
    params_path = work / "params.json"
    if params_path.exists() and _json_or_none(params_path) != params:
        if not force:
            raise PrepareError(f"{out} holds an unfinished preparation with other parameters; rerun it with its "
                               f"own parameters to resume it ({params_path}), or pass --force to replace it")
        _remove_prepared(out)
        work.mkdir(parents=True)
    write_text(params_path, json.dumps(params, sort_keys=True))
    return False


def _open_rows(out: Path, n: int, row_bytes: int) -> tuple[Path, dict]:
    """The data file to write rows into and the rows already done (from the log), resuming a killed run.

    The audio lives in `clips.int16.partial` until it is complete, then in `clips.int16` (renamed just
    before the manifest is written). A run killed between the two resumes from the final name: the data
    file is never made again over rows that the log says are done.
    """
    partial, final, log_path = out / (CLIPS_FILE + ".partial"), out / CLIPS_FILE, out / WORK / "done.log"
    if partial.exists() and final.exists():
        raise PrepareError(f"{out} holds both {CLIPS_FILE} and {partial.name} without a manifest: cannot tell "
                           f"which is current; delete {out} (or pass --force) and prepare again")
    data = final if final.exists() else partial
    done = _read_log(log_path) if data.exists() and os.path.getsize(data) == n * row_bytes else {}
    if data is final and len(done) < n:
        raise PrepareError(f"{out}: {CLIPS_FILE} is there but the log of its rows is incomplete; delete {out} "
                           f"(or pass --force) and prepare again")
    if not done:
        log_path.unlink(missing_ok=True)  # rows logged for a data file that is gone or of another size
    if data is partial and not done:
        with open(partial, "wb"):
            pass
        os.truncate(partial, n * row_bytes)  # sparse: rows not yet written read as zeros
    return data, done


def _decode_rows(data: Path, done: dict, todo: list, plan: _Plan, source: Path, workers: int | None,
                 progress: bool) -> None:
    """Decode the `todo` rows in parallel, write each at its offset and log it (ok with its min, max and
    decoded length, or skip with the reason), so that a killed run resumes after the last logged row."""
    n, row_bytes, rate = len(plan.paths), plan.length * 2, plan.params["sample_rate"]
    workers = max(1, workers or min(4, os.cpu_count() or 1))
    fd = os.open(data, os.O_WRONLY)
    log = open(data.parent / WORK / "done.log", "a", buffering=1)
    try:
        with counter(n, "prepare", "clip", initial=n - len(todo), enabled=progress) as bar:
            for i, (samples, reason, decoded) in _decode_all(todo, plan.paths, source, rate, plan.length,
                                                             plan.params["min_seconds"], workers):
                if samples is None:
                    done[i] = ("skip", reason)
                    log.write(f"{i}\tskip\t{reason}\n")
                else:
                    pwrite_all(fd, samples.tobytes(), i * row_bytes)  # every byte, or an error
                    done[i] = ("ok", int(samples.min()), int(samples.max()), decoded)
                    log.write(f"{i}\tok\t{done[i][1]}\t{done[i][2]}\t{decoded}\n")
                bar.update()
        os.fsync(fd)
    finally:
        os.close(fd)
        log.close()


def _write_manifest(out: Path, data: Path, done: dict, plan: _Plan) -> dict:
    """labels.npy and rowstats.npy, the data file under its final name, then the manifest, last."""
    paths, n, rate = plan.paths, len(plan.paths), plan.params["sample_rate"]
    labels = mtat.label_matrix(plan.ann, plan.split["tags"], paths, plan.params["scheme"])
    rowstats = np.zeros((n, 2), np.int16)
    skipped, padded = [], []
    row_split = {p: s for s, ps in plan.names.items() for p in ps}
    for i, p in enumerate(paths):
        entry = done[i]
        if entry[0] == "skip":
            skipped.append({"row": i, "path": p, "split": row_split[p], "reason": entry[1]})
            continue
        rowstats[i] = entry[1:3]
        if entry[3] < plan.length - rate:  # more than a second of padding
            padded.append({"row": i, "path": p, "seconds": round(entry[3] / rate, 3)})
    bad = {s["row"] for s in skipped}
    manifest = {
        "params": plan.params,
        "tags": plan.split["tags"],
        "shape": [n, plan.length],
        "paths": paths,
        "splits": {s: [i for i, p in enumerate(paths) if row_split[p] == s and i not in bad] for s in plan.names},
        "skipped": skipped,
        "padded": padded,
        "outside_folders": plan.outside,  # in no split: listed, not dropped silently
    }
    for name, array in (("labels.npy", labels), ("rowstats.npy", rowstats)):
        with replacing(out / name) as tmp:
            np.save(tmp, array)
    if data.name != CLIPS_FILE:
        os.replace(data, out / CLIPS_FILE)
    manifest["bytes"] = {name: os.path.getsize(out / name) for name in DATA_FILES}  # a damaged file is told apart
    write_text(out / MANIFEST, json.dumps(manifest, indent=1))  # last: now the folder is prepared
    return manifest


def _report(out: Path, manifest: dict, plan: _Plan) -> None:
    """One line of counts, then every skipped clip with its reason and any split left empty."""
    skipped, names = manifest["skipped"], plan.names
    counts = ", ".join(f"{s} {len(r)}" for s, r in manifest["splits"].items())
    print(f"{out}: prepared {len(plan.paths) - len(skipped)} clips ({counts}); skipped {len(skipped)}")
    for s in skipped:
        print(f"  skipped {s['path']}: {s['reason']}")
    if plan.outside:
        print(f"  {len(plan.outside)} clip(s) outside folders 0-f are in no split, e.g. {plan.outside[0]}")
    for s, rows in manifest["splits"].items():
        if not rows and names[s]:
            print(f"  warning: the {s} split has no readable clip (all {len(names[s])} skipped)")


#: The files a preparation writes (besides `.prepare/`); `--force` removes only these.
DATA_FILES = (CLIPS_FILE, "labels.npy", "rowstats.npy")
PREPARED_FILES = (MANIFEST, CLIPS_FILE + ".partial", *DATA_FILES)


def _damage(out: Path, manifest: dict) -> str:
    """What is wrong with a finished preparation's data files, or "": one missing, or of another size than
    the manifest records (the audio's size follows from its shape in manifests written before sizes were)."""
    try:
        sizes = {CLIPS_FILE: int(np.prod(manifest["shape"])) * 2, **manifest.get("bytes", {})}
    except (KeyError, TypeError, ValueError):
        return f"{MANIFEST} has no usable shape"
    for name in DATA_FILES:
        try:
            size = os.path.getsize(out / name)
        except OSError:
            return f"{name} is missing"
        if name in sizes and size != sizes[name]:
            return f"{name} is damaged ({size:,} bytes, {sizes[name]:,} expected: truncated?)"
    return ""


def _remove_prepared(out: Path) -> None:
    """Remove a preparation's files, the manifest first (so a kill midway leaves no finished-looking set)."""
    for name in PREPARED_FILES:
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / WORK, ignore_errors=True)


def _check_new_folder(out: Path, force: bool) -> None:
    """Refuse a folder that holds anything but a preparation: an input, or another dataset."""
    if out.exists() and not out.is_dir():
        raise PrepareError(f"{out} is a file, not a folder; choose another --out")
    entries = sorted(e.name + ("/" if e.is_dir() else "") for e in out.iterdir()) if out.is_dir() else []
    if entries and not force:
        shown = ", ".join(entries[:4]) + (f" and {len(entries) - 4} more" if len(entries) > 4 else "")
        raise PrepareError(f"{out} is not empty and holds no preparation ({shown}); choose a new or empty "
                           f"--out, or pass --force to prepare into it")


def _json_or_none(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _read_log(path: Path) -> dict:
    """Rows finished by an earlier run. A last line cut short (a kill, a full disk) is dropped from the
    file too, so that the next appended line starts on a line of its own."""
    done = {}
    if not path.exists():
        return done
    raw = path.read_bytes()
    complete = raw.rfind(b"\n") + 1
    if complete < len(raw):
        os.truncate(path, complete)
    for line in raw[:complete].decode("utf-8", "replace").split("\n")[:-1]:
        f = line.split("\t")
        try:
            done[int(f[0])] = ("skip", f[2]) if f[1] == "skip" else ("ok", int(f[2]), int(f[3]), int(f[4]))
        except (IndexError, ValueError):
            raise PrepareError(f"{path}: unreadable line {line[:60]!r}; delete its folder (or pass --force) "
                               f"and prepare again") from None
    return done


def _decode_all(rows, paths, source, sample_rate, length, min_seconds, workers):
    """Yield (row, result) as clips finish; at most 2 x workers clips in flight (bounded memory)."""
    inside = os.path.realpath(source)

    def args(i):
        return str(source / paths[i]), sample_rate, length, min_seconds, inside

    if workers == 1:
        for i in rows:
            yield i, _decode_row(*args(i))
        return
    with worker_pool(workers) as pool:
        for k, future in finished(pool, _decode_row, (args(i) for i in rows), 2 * workers):
            try:
                result = future.result()
            except BrokenProcessPool:
                raise PrepareError(f"a decoding process died (killed by the system, most often for lack of "
                                   f"memory); rerun the same command with fewer --workers (e.g. --workers "
                                   f"{max(1, workers // 2)}) to resume") from None
            yield rows[k], result


class PreparedSet:
    """A prepared folder, opened read-only: audio memmap, labels, per-clip min/max, manifest.

    Chapter: 01_data
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        manifest = self.path / MANIFEST
        if not manifest.exists():
            hint = " (an unfinished preparation: rerun `rawtag prepare` to resume it)" if (
                self.path / WORK).exists() else " (run `rawtag prepare --source SRC --out DIR` first)"
            raise PrepareError(f"{self.path} is not a prepared data folder: no {MANIFEST}{hint}")
        again = f"prepare it again: `rawtag prepare --source SRC --out {self.path} --force`"
        self.manifest = read_json(manifest, again, keys=("params", "tags", "shape", "paths", "splits"))
        damage = _damage(self.path, self.manifest)
        if damage:
            raise PrepareError(f"{self.path}: {damage}; {again} (or rerun the `rawtag prepare` that made it)")
        self.tags: list[str] = self.manifest["tags"]
        self.paths: list[str] = self.manifest["paths"]
        self.sample_rate: int = self.manifest["params"]["sample_rate"]
        self.clips = np.memmap(self.path / CLIPS_FILE, dtype=np.int16, mode="r",
                               shape=tuple(self.manifest["shape"]))
        self.labels = np.load(self.path / "labels.npy")
        self.rowstats = np.load(self.path / "rowstats.npy")

    def will_need(self, rows: np.ndarray) -> None:
        """Ask the kernel to start reading these clips into the page cache (no wait, nothing returned): the
        next batch's disk reads overlap this one's training step without a thread of our own. A no-op where
        the OS has no `posix_fadvise` (macOS).

        Chapter: 03_base_cnn
        """
        if not hasattr(os, "posix_fadvise"):
            return
        clip_bytes = self.clips.strides[0]
        with open(self.path / CLIPS_FILE, "rb") as f:
            for row in np.unique(rows).tolist():
                os.posix_fadvise(f.fileno(), self.clips.offset + row * clip_bytes, clip_bytes,
                                 os.POSIX_FADV_WILLNEED)

    def rows(self, split: str) -> np.ndarray:
        if split not in self.manifest["splits"]:
            raise PrepareError(f"unknown split {split!r}; choose one of {', '.join(self.manifest['splits'])}")
        return np.asarray(self.manifest["splits"][split], dtype=np.int64)

    def __repr__(self):
        counts = ", ".join(f"{s}={len(r)}" for s, r in self.manifest["splits"].items())
        return f"PreparedSet({str(self.path)!r}, {len(self.tags)} tags, {counts})"

"""The set on disk: plan every clip, render and encode it, write MTAT's two tables, resumably.

Taught in chapter 01 (data). `plan` decides every clip's song, folder, file name and tags without audio;
`write_clip` renders one planned clip into a 16 kHz MP3; `write_synthetic` writes the whole set in MTAT's
on-disk format (folders 0-f, `annotations_final.csv`, `clip_info_final.csv`), refusing a folder that
holds another dataset and resuming after a kill.

Chapter: 01_data
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...atomic import RESUME, free_bytes, human, is_full, replacing, require_space, write_text
from ...progress import counter
from ..audio import to_int16
from ..mtat import ANNOTATIONS, CLIP_INFO, MTAT_TAGS
from .banks import bank_file
from .sampler import DEFAULT, bank_name
from .songs import Song, annotate, draw_song, render_clip
from .vocabulary import CLIP_SECONDS, FOLDER_CYCLE, MP3_QUALITY, SR


@dataclass
class ClipPlan:
    """One clip of the set, planned: its MTAT-style clip id and path, the song it is cut from
    (and that song's seed), which segment of the song, and the tags the annotator gave it.

    Chapter: 01_data
    """
    clip_id: int
    path: str  # MTAT-style mp3_path, "f/artist-album-01-title-0-29.mp3"
    song: Song
    song_seed: tuple
    segment: int
    tags: set


def _check_arguments(clips, seed, label_drop) -> None:
    if isinstance(clips, bool) or not isinstance(clips, (int, np.integer)) or clips < 1:
        raise ValueError(f"--clips must be at least 1, got {clips}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"--seed must be a whole number, 0 or more, got {seed}")
    if not 0 <= label_drop < 1:
        raise ValueError(f"label_drop (--label-drop) must be in [0, 1), got {label_drop}")


def plan(clips: int, seed: int = 0, label_drop: float = 0.1, progress=None) -> list[ClipPlan]:
    """Decide every clip's song, folder, file name and tags without rendering audio (fast, deterministic).

    Clips of one song (1 to 3 consecutive 29 s segments) share a folder, so they share a split. A plan
    for more clips extends one for fewer with the same seed (the same first clips). `progress`, if given,
    is called with the number of clips planned so far.

    Chapter: 01_data
    """
    _check_arguments(clips, seed, label_drop)
    out, song_no = [], 0
    while len(out) < clips:
        rng = np.random.default_rng([seed, song_no])
        song = draw_song(rng)
        folder = FOLDER_CYCLE[song_no % 16]  # every 16 songs fill each folder once: small sets keep all splits
        artist = f"synth_{song.style}_{song_no % 97:02d}"
        for segment in range(int(rng.integers(1, 4))):
            if len(out) == clips:
                break
            start = segment * 29 + segment
            song_id = f"song_{song_no:05d}"
            path = f"{folder}/{artist}-album_{song_no:05d}-{segment + 1:02d}-{song_id}-{start}-{start + 29}.mp3"
            tags = annotate(song.facts, np.random.default_rng([seed, song_no, segment, 1]), label_drop)
            out.append(ClipPlan(len(out) + 1, path, song, (seed, song_no), segment, tags))
        song_no += 1
        if progress is not None and song_no % 1000 == 0:
            progress(len(out))
    return out


def render_plan(item: ClipPlan, soundfont: str | None = None) -> np.ndarray:
    """The audio of one planned clip (deterministic: its own random stream), played on the bank `soundfont`
    (a checked path, `sampler.check_soundfont`; None: the default).

    Chapter: 01_data
    """
    return render_clip(item.song, np.random.default_rng([*item.song_seed, item.segment, 2]), soundfont)


class SynthError(RuntimeError):
    """A synthetic set that cannot be written; the message says what to do.

    Chapter: 01_data
    """


def encode_mp3(audio: np.ndarray) -> bytes:
    """Mono audio at `SR` (floats in [-1, 1]) as constant 32 kbit/s MP3, MTAT's format. LAME at algorithm
    quality 7 (of 0 best to 9 fastest): about eight times faster than libsndfile's LAME setting, with no
    larger error (`benchmarks/synth_bench.py` measures both). Deterministic: the same audio, the same bytes.

    Chapter: 01_data
    """
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(32)
    encoder.set_in_sample_rate(SR)
    encoder.set_channels(1)
    encoder.set_quality(MP3_QUALITY)
    return bytes(encoder.encode(to_int16(audio).tobytes()) + encoder.flush())


def write_clip(item: ClipPlan, out_dir: str, soundfont: str | None = None) -> str:
    """Render and encode one clip as 16 kHz 32 kbit/s MP3, atomically (a temporary name, then a rename).

    Chapter: 01_data
    """
    dest = Path(out_dir) / item.path
    if dest.exists():
        return item.path
    dest.parent.mkdir(parents=True, exist_ok=True)
    data = encode_mp3(render_plan(item, soundfont))
    try:
        with replacing(dest) as tmp:
            Path(tmp).write_bytes(data)
    except OSError as e:
        if not is_full(e):
            raise
        raise SynthError(f"cannot write {dest} ({e.strerror}); the disk may be full "
                         f"({human(free_bytes(dest.parent))} free) or a file-size limit reached; {RESUME}") from None
    return item.path


#: About the bytes of one clip on disk: 29.1 s at 32 kbit/s, plus its rows in the two tables.
CLIP_BYTES = int(CLIP_SECONDS * 32_000 / 8) + 1_200
MARKER = "synth.json"


def _table(header: list[str], rows: list[list]) -> bytes:
    buf = io.StringIO(newline="")
    w = csv.writer(buf, delimiter="\t", quotechar='"', quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _tables(items: list[ClipPlan]) -> dict[str, bytes]:
    """The two table files of a plan, as bytes: annotations (MTAT's 188 columns) and clip info."""
    tags = list(MTAT_TAGS)
    column = {t: i for i, t in enumerate(tags)}
    rows = []
    for it in items:
        flags = ["0"] * len(tags)
        for t in it.tags:
            flags[column[t]] = "1"
        rows.append([str(it.clip_id), *flags, it.path])
    info = [[str(it.clip_id), f"{it.segment + 1:02d}", f"song {it.song_seed[1]}", it.path.split("-")[0][2:],
             f"album {it.song_seed[1]}", "", str(it.segment * 30), str(it.segment * 30 + 29), "", it.path]
            for it in items]
    return {CLIP_INFO: _table(["clip_id", "track_number", "title", "artist", "album", "url", "segmentStart",
                               "segmentEnd", "original_url", "mp3_path"], info),
            ANNOTATIONS: _table(["clip_id", *tags, "mp3_path"], rows)}


def _audio_bytes(out: Path) -> int:
    """Bytes of the files already in folders 0-f of `out` (a resumed run needs that much less)."""
    total = 0
    for folder in "0123456789abcdef":
        if (out / folder).is_dir():
            total += sum(e.stat().st_size for e in os.scandir(out / folder) if e.is_file())
    return total


def _claim(out: Path, params: dict, tables: dict[str, bytes], force: bool) -> bool:
    """Check that `out` may receive this set; returns True when existing clips must be rendered again.

    A folder is ours when it is new or empty, when its `synth.json` names the same seed, label drop and bank, or
    (written before synth.json existed) when its annotation file is exactly the one this plan writes.
    Anything else is another dataset (MTAT, another seed): refused unless `force`, which renders every
    clip of this plan again (so no old file under a colliding name survives) and rewrites both tables.
    """
    marker = out / MARKER
    if marker.exists():
        try:
            old = json.loads(marker.read_text())
        except ValueError:
            old = {}
        if all(old.get(k) == params.get(k) for k in {*params, "soundfont"}):  # no "soundfont": the default bank
            return False
        what = (f"a synthetic set with seed {old.get('seed')}, label drop {old.get('label_drop')} and SoundFont "
                f"{old.get('soundfont', DEFAULT)}")
    else:
        if not out.is_dir():
            if out.exists():
                raise SynthError(f"{out} is a file, not a folder; choose another --out")
            return False
        ann = out / ANNOTATIONS
        if ann.exists() and ann.read_bytes() == tables[ANNOTATIONS]:
            return False  # the same set, written by an earlier version
        found = [name for name in (ANNOTATIONS, CLIP_INFO) if (out / name).exists()]
        found += [f"{f}/" for f in "0123456789abcdef" if (out / f).is_dir() and any((out / f).iterdir())]
        if not found:
            return False
        rows = ""
        if ann.exists():
            with open(ann, "rb") as f:
                rows = f" ({sum(1 for _ in f) - 1:,} clips)"
        what = f"files that this synthetic set did not write{rows}: {', '.join(found[:6])}"
    if not force:
        raise SynthError(f"{out} already holds {what}; choose another --out, or pass --force to write this set "
                         f"over it (its tables are replaced and every clip is rendered again)")
    return True


def write_synthetic(out: str | os.PathLike, clips: int, seed: int = 0, workers: int | None = None,
                    label_drop: float = 0.1, progress: bool = True, force: bool = False,
                    soundfont: str | os.PathLike | None = None) -> Path:
    """Write a synthetic set in MTAT's on-disk format into `out`.

    Resumable and idempotent: finished MP3s are kept (each is written under a temporary name and renamed),
    and the annotation files are written last, so a folder with `annotations_final.csv` is complete.
    `synth.json`, written first, records the seed, the label drop and, where it is not the default, the
    SoundFont (`soundfont`: a named bank, "TimGM6mb" or "FluidR3_GM", or an .sf2 file, whose recordings play
    every part; `banks.bank_file` finds or fetches it, `sampler.bank_name` names it): a rerun with
    others, or into a folder holding another dataset (an MTAT download), is refused unless `force` (see
    `_claim`). The free disk space is checked against the set's estimated size before anything is written.

    Chapter: 01_data
    """
    from ...concurrent import finished, worker_pool

    _check_arguments(clips, seed, label_drop)
    soundfont = bank_file(soundfont, progress=progress)
    out = Path(out)
    if progress:
        bank = "" if soundfont is None else f", played on {Path(soundfont).name}"
        print(f"synth: {clips:,} clips (about {human(clips * CLIP_BYTES)}) into {out}{bank}", flush=True)
    have = _audio_bytes(out) if out.is_dir() else 0
    require_space(out, clips * CLIP_BYTES - have, f"a synthetic set of {clips:,} clips")
    with counter(clips, "plan", "clip", enabled=progress and clips >= 20_000) as bar:
        items = plan(clips, seed, label_drop, progress=lambda k: bar.update(k - bar.n))
        bar.update(len(items) - bar.n)
    tables = _tables(items)
    params = {"format": 1, "seed": int(seed), "label_drop": float(label_drop)}
    if soundfont is not None:  # the default bank is not named, so that sets written before this still resume
        params["soundfont"] = bank_name(soundfont)
    again = _claim(out, params, tables, force)
    if again:
        for name in (ANNOTATIONS, CLIP_INFO, MARKER):
            (out / name).unlink(missing_ok=True)
        for it in items:
            (out / it.path).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / MARKER, json.dumps({**params, "clips": clips}, sort_keys=True))  # before any clip
    workers = max(1, min(workers or os.cpu_count() or 1, clips))
    todo = [it for it in items if not (out / it.path).exists()]
    with counter(len(items), "synth", "clip", initial=len(items) - len(todo), enabled=progress) as bar:
        if workers == 1:
            for it in todo:
                write_clip(it, str(out), soundfont)
                bar.update()
        else:
            with worker_pool(workers) as pool:
                for _, future in finished(pool, write_clip, [(it, str(out), soundfont) for it in todo], 2 * workers):
                    future.result()
                    bar.update()
    for name in (CLIP_INFO, ANNOTATIONS):  # the annotations last: with them, the folder is complete
        with replacing(out / name) as tmp:
            Path(tmp).write_bytes(tables[name])
    return out

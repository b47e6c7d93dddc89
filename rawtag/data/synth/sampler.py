"""A sampler: real recorded instrument notes from a General MIDI SoundFont, placed where a score says.

Taught in chapter 01 (data). A SoundFont is a bank of recordings of real instruments (one or a few
recorded notes per instrument, pitched to every key) in the General MIDI order: program 0 is a grand
piano, 40 a violin, 48 a string section; bank 128 holds drum kits. The sampler's default bank is TimGM6mb
(Tim Brechbill, GPL-2), the one the `pretty_midi` wheel ships; any other General MIDI SoundFont can be
played instead (`soundfont=` a file; `banks` finds or fetches the named ones): the book's quick profile
plays FluidR3_GM (MIT), the same scores on more recordings (`benchmarks/README.md`, "Another SoundFont").

`note` renders ONE note (an instrument, a key, a loudness) with `midirenderer` (a Rust SoundFont synth)
as a dry 16 kHz recording, once: a clip repeats its notes and a set reuses them, so the notes are kept
in memory and in a folder on disk (`notes_folder`: `$RAWTAG_CACHE/notes`, default `~/.cache/rawtag`),
shared by processes and by later runs. Rendering is deterministic, so a cached note is the same note.
`play` places a part's notes (onset, key, duration, loudness) on a time line: each note's recording is
cut at its duration with a short release, as a player lifting a finger.

Chapter: 01_data
"""
from __future__ import annotations

import hashlib
import io
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from .vocabulary import SR

HOLD = 4.0  # seconds a note is held at most (the score caps its notes to this)
TAIL = 1.0  # seconds of ring after the key is released, rendered with every note
#: The velocity every note is rendered at. In this SoundFont a note's velocity changes only its gain, by
#: (velocity / 127)^2 (measured: the same waveform at 48 and 112, peak ratio 5.45 = (112 / 48)^2), so
#: `play` renders each note once and scales it.
VELOCITY = 100
SILENT = 10 ** (-60 / 20)  # a rendered note is trimmed where it stays below -60 dB of its peak


DEFAULT = "TimGM6mb"  # the bank played when no SoundFont file is named


def check_soundfont(path: str | os.PathLike | None) -> str | None:
    """`path` as the sampler takes it (an absolute path), or None for the default bank; a ValueError naming
    the problem and the fix for a file that is missing or is not a SoundFont (a RIFF `sfbk` file).

    Chapter: 01_data
    """
    if path is None:
        return None
    path = Path(path).expanduser().resolve()
    fix = "give a bank's name (TimGM6mb; FluidR3_GM, found where Debian's fluid-soundfont-gm puts it or " \
          "fetched once) or the path of a General MIDI .sf2 file, or leave --soundfont out for the default bank"
    if not path.is_file():
        raise ValueError(f"--soundfont {path}: no such file; {fix}")
    with open(path, "rb") as f:
        head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise ValueError(f"--soundfont {path}: not a SoundFont 2 file (no RIFF sfbk header); {fix}")
    return str(path)


@lru_cache(maxsize=2)
def soundfont(path: str | None = None) -> bytes:
    """The SoundFont's bytes: the file at `path`, or by default TimGM6mb.sf2 (installed with `pretty_midi`).

    Chapter: 01_data
    """
    if path is not None:
        return Path(path).read_bytes()
    return resources.files("pretty_midi").joinpath("TimGM6mb.sf2").read_bytes()


@lru_cache(maxsize=8)
def bank_name(path: str | None = None) -> str:
    """What names a bank in the notes cache and in a set's `synth.json`: "TimGM6mb" for the default, else
    the file's name and the first 12 hex digits of its SHA-256 (the same name, the same recordings).

    Chapter: 01_data
    """
    if path is None:
        return DEFAULT
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return f"{Path(path).stem}-{digest.hexdigest()[:12]}"


def _midi(program: int, key: int, velocity: int, drum: bool) -> bytes:
    """A one-note MIDI file: reverb and chorus sends off (the mix adds its own room), the key held HOLD s."""
    import pretty_midi

    song = pretty_midi.PrettyMIDI(initial_tempo=120)
    part = pretty_midi.Instrument(program=program, is_drum=drum)
    part.control_changes += [pretty_midi.ControlChange(91, 0, 0.0), pretty_midi.ControlChange(93, 0, 0.0)]
    part.notes.append(pretty_midi.Note(velocity=velocity, pitch=key, start=0.01, end=0.01 + HOLD))
    part.control_changes.append(pretty_midi.ControlChange(91, 0, 0.01 + HOLD + TAIL))  # render the release
    song.instruments.append(part)
    buf = io.BytesIO()
    song.write(buf)
    return buf.getvalue()


def cache_root() -> Path:
    """rawtag's cache of things made or fetched once (notes, SoundFonts): `$RAWTAG_CACHE`, else
    `~/.cache/rawtag`.

    Chapter: 01_data
    """
    return Path(os.environ.get("RAWTAG_CACHE") or Path.home() / ".cache" / "rawtag")


def notes_folder(path: str | None = None) -> Path:
    """Where the notes of a bank (`path`, None: the default) are kept: under `cache_root()/notes`, one folder
    per bank. Safe to delete: notes are rendered again on demand.

    Chapter: 01_data
    """
    return cache_root() / "notes" / f"{bank_name(path)}-{int(HOLD * 1000)}+{int(TAIL * 1000)}ms-{SR}Hz-float16"


def _render(program: int, key: int, velocity: int, drum: bool, path: str | None = None) -> np.ndarray:
    import midirenderer
    import soundfile as sf
    import soxr

    wav = midirenderer.render_wave_from(soundfont(path), _midi(program, key, velocity, drum))
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    mono = soxr.resample(audio.mean(axis=1), rate, SR).astype(np.float32)
    loud = np.flatnonzero(np.abs(mono) > SILENT * (np.abs(mono).max() + 1e-9))
    return mono[: loud[-1] + 1] if len(loud) else mono[:1]


@lru_cache(maxsize=4096)
def note(program: int, key: int, velocity: int = VELOCITY, drum: bool = False,
         soundfont: str | None = None) -> np.ndarray:
    """One note of a SoundFont instrument held for `HOLD` s then released (its release rendered for up to
    `TAIL` s): mono float32 at 16 kHz (rounded to float16, as kept on disk), trimmed where it has fallen
    silent. `program` is the General MIDI instrument (or, with `drum`, the kit; `key` is then the drum:
    36 kick, 38 snare, 42 closed hi-hat ...). `soundfont`: the bank's file (`check_soundfont`), None for the
    default. Cached: each note is rendered once.

    Chapter: 01_data
    """
    path = notes_folder(soundfont) / f"{'kit' if drum else 'program'}{program}-key{key}-vel{velocity}.npy"
    try:
        mono = np.load(path)
    except (OSError, ValueError):  # not rendered yet (or a damaged file): render it and keep it
        mono = _render(program, key, velocity, drum, soundfont).astype(np.float16)  # a fresh note = a kept one
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")  # one per process: workers may race
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                np.save(f, mono)  # float16: half the disk, its rounding far below the MP3's own noise
            os.replace(tmp, path)
        except OSError:  # a read-only or full disk: the note is still used, only not kept
            tmp.unlink(missing_ok=True)
    mono = mono.astype(np.float32)
    mono.setflags(write=False)  # shared by every note of the cache
    return mono


def play(events, program: int, length: int, drum: bool = False, release: float = 0.15,
         soundfont: str | None = None) -> np.ndarray:
    """A part on a time line of `length` samples: each event (onset s, key, duration s, velocity 1-127)
    plays the recorded note of the bank `soundfont` (None: the default), cut `release` s after its duration
    with a fade (drums ring out), with the gain of its velocity, (velocity / `VELOCITY`)^2, as the default
    SoundFont's own velocity curve.

    Chapter: 01_data
    """
    out = np.zeros(length, np.float32)
    fade = np.linspace(1, 0, max(1, int(release * SR)), dtype=np.float32)
    for onset, key, duration, velocity in events:
        start = int(round(onset * SR))
        if start >= length or start < 0:
            continue
        sample = note(int(program), int(key), VELOCITY, drum, soundfont)
        n = len(sample)
        if not drum:
            n = min(n, int((min(duration, HOLD) + release) * SR))
        n = min(n, length - start)
        gain = np.float32((velocity / VELOCITY) ** 2)
        out[start:start + n] += gain * sample[:n]
        if not drum and n > len(fade):
            out[start + n - len(fade):start + n] -= gain * sample[n - len(fade):n] * (1 - fade)
    return out

"""Shared fixtures: small generated data in MTAT's format, built once per test session."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rawtag.data.mtat import MTAT_TAGS

SHARED = Path(__file__).resolve().parents[2] / "shared"
MTAT_DIR = SHARED / "mtat"


def write_annotations(path: Path, rows: list[tuple[int, set, str]], tags=MTAT_TAGS) -> None:
    """An annotation file exactly as MTAT's: tab-separated, all fields quoted, CRLF."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        w.writerow(["clip_id", *tags, "mp3_path"])
        for clip_id, on, p in rows:
            w.writerow([clip_id, *("1" if t in on else "0" for t in tags), p])


def tone_source(root: Path, clips: int = 60, seed: int = 0, seconds: float = 29.1) -> Path:
    """A learnable set in MTAT's layout: each of 4 tags is a tone at its own pitch, mixed at random.

    WAV files at 16 kHz (quick to write; `prepare` reads any format). Folders follow MTAT's split rule.
    """
    rng = np.random.default_rng(seed)
    tags = ["guitar", "piano", "drums", "flute"]
    freqs = [220.0, 440.0, 880.0, 1760.0]
    t = np.arange(int(16000 * seconds)) / 16000
    rows = []
    for i in range(clips):
        folder = "0123456789abcdef"[i % 16]
        on = rng.random(4) < 0.4
        on[rng.integers(0, 4)] = True
        x = sum(np.sin(2 * np.pi * f * t) * 0.2 for f, k in zip(freqs, on, strict=True) if k)
        x = x + rng.standard_normal(len(t)) * 0.05
        rel = f"{folder}/tone_{i:03d}.wav"
        (root / folder).mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, x.astype(np.float32), 16000)
        rows.append((i + 1, {tg for tg, k in zip(tags, on, strict=True) if k}, rel))
    write_annotations(root / "annotations_final.csv", rows)
    return root


def other_soundfont(folder: Path) -> str:
    """A SoundFont that is not the default bank: TimGM6mb's bytes as `folder/other.sf2`, one byte of its INFO
    name changed (another file, so another bank name; the same recordings, so the same notes)."""
    from rawtag.data import synth

    data = bytearray(synth.soundfont())
    at = data.index(b"INAM") + 8
    data[at] = ord("X") if data[at] != ord("X") else ord("Y")
    path = folder / "other.sf2"
    path.write_bytes(bytes(data))
    return str(path)


@pytest.fixture(scope="session")
def synth_source(tmp_path_factory) -> Path:
    from rawtag.data.synth import write_synthetic

    return write_synthetic(tmp_path_factory.mktemp("synth"), clips=20, seed=3, workers=2, progress=False)


@pytest.fixture(scope="session")
def synth_prepared(synth_source, tmp_path_factory) -> Path:
    from rawtag.data.prepare import prepare

    return prepare(synth_source, tmp_path_factory.mktemp("prepared") / "set", workers=2, progress=False)


@pytest.fixture(scope="session")
def tone_prepared(tmp_path_factory) -> Path:
    from rawtag.data.prepare import prepare

    src = tone_source(tmp_path_factory.mktemp("tones"), clips=64)
    return prepare(src, tmp_path_factory.mktemp("tone_prepared") / "set", top_k=4, workers=2, progress=False)

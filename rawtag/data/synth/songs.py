"""Composition: a song's facts, its MTAT tags, its parts and notes, and one 29.1 s clip of it mixed.

Taught in chapter 01 (data). `draw_song` picks a style and what it implies (tempo, key, instruments, a
voice, level, reverb) and lists the song's facts; `annotate` turns facts into MTAT tags as its annotators
did (synonyms, misses); `render_clip` writes each part's notes (chords, arpeggios or a melody), plays
them through `INSTRUMENTS`, lets parts enter and leave, adds drums, reverb and level.

Chapter: 01_data
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .instruments import INSTRUMENTS, hihat, kick, reverb, snare, tabla
from .vocabulary import ANNOTATOR, CLIP_LEN, CLIP_SECONDS, REGISTER, SCALES, SR, STYLES, VOWELS, midi_hz


@dataclass
class Song:
    """The facts of one song: what a listener could hear, and what the tags are drawn from.

    Chapter: 01_data
    """

    style: str
    bpm: float
    key: int
    scale: str
    instruments: list[str]
    vocal: str
    level: str
    reverb: float
    facts: list[str] = field(default_factory=list)


def draw_song(rng) -> Song:
    """A random song: a style (long-tailed weights) and what it implies, with the facts its tags are drawn from.

    Chapter: 01_data
    """
    names = list(STYLES)
    weights = np.array([STYLES[s][0] for s in names], dtype=float)
    style = names[rng.choice(len(names), p=weights / weights.sum())]
    _, (lo, hi), inst_p, vocal_p, level_w, rev = STYLES[style]
    instruments = [i for i, p in inst_p.items() if rng.random() < p]
    if not instruments:
        instruments = [max(inst_p, key=inst_p.get)]
    vocal = rng.choice(list(vocal_p), p=np.array(list(vocal_p.values())) / sum(vocal_p.values()))
    level = rng.choice(["quiet", "normal", "loud"], p=np.array(level_w) / sum(level_w))
    scale = "raga" if style == "indian" else rng.choice(["major", "minor", "pentatonic"])
    song = Song(style, float(rng.uniform(lo, hi)), int(rng.integers(0, 12)), str(scale), instruments,
                str(vocal), str(level), float(rev * rng.uniform(0.7, 1.3)))
    facts = [f"style:{style}"] + [f"inst:{i}" for i in instruments if f"inst:{i}" in ANNOTATOR]
    facts.append("vocal:none" if vocal == "none" else "vocal:any")
    if vocal != "none":
        facts.append(f"vocal:{vocal}")
    if song.bpm >= 135:
        facts.append("tempo:fast")
    if song.bpm <= 85:
        facts.append("tempo:slow")
    if level != "normal":
        facts.append(f"level:{level}")
    audible = [i for i in instruments if i not in ("drone",)] + ([] if vocal == "none" else [vocal])
    if len(audible) == 1:
        facts.append("solo")
    song.facts = facts
    return song


def annotate(facts: list[str], rng, label_drop: float) -> set[str]:
    """Turn facts into MTAT tags the way MTAT's annotators did: some synonyms, some misses.

    Chapter: 01_data
    """
    tags = set()
    for fact in facts:
        for tag, p in ANNOTATOR.get(fact, {}).items():
            if rng.random() < p and rng.random() >= label_drop:
                tags.add(tag)
    return tags


def _melody(song: Song, inst: str, rng, bars: int, beat: float, chords: list[int]):
    """Note events (onset s, midi, duration s) for one instrument: chords, arpeggios or a melody."""
    lo, hi = REGISTER[inst]
    scale = SCALES[song.scale]
    pitches = [song.key + 12 * o + s for o in range(2, 9) for s in scale]
    pitches = [p for p in pitches if lo <= p <= hi]
    events, bar = [], 4 * beat
    if inst in ("pad", "drone", "strings", "choir"):  # long chord tones
        for b in range(bars):
            root = chords[b % len(chords)]
            for step in (0, 2, 4)[: 1 if inst == "drone" else 3]:
                p = pitches[(root + step) % len(pitches)] if inst != "drone" else pitches[0]
                events.append((b * bar, p, bar * 1.05))
        return events
    if inst in ("guitar", "eguitar", "harp", "harpsichord") and rng.random() < 0.6:  # strums and arpeggios
        step = beat / (2 if inst != "harp" else 4)
        for b in range(bars):
            root = chords[b % len(chords)]
            chord = [pitches[(root + s) % len(pitches)] for s in ((0, 4, 7) if inst == "eguitar" else (0, 2, 4))]
            for k in range(int(bar / step)):
                p = chord[k % 3] if inst != "eguitar" else chord[0]
                events.append((b * bar + k * step, p, step * 2))
        return events
    i, t = int(rng.integers(0, len(pitches))), 0.0
    while t < bars * bar:
        dur = beat * rng.choice([0.5, 1, 1, 2]) * (2 if inst in ("female", "male", "cello") else 1)
        i = int(np.clip(i + rng.choice([-2, -1, -1, 0, 1, 1, 2]), 0, len(pitches) - 1))
        if rng.random() > 0.12:  # a rest now and then
            events.append((t, pitches[i], dur))
        t += dur
    return events


def _render_part(song: Song, inst: str, events, rng, length: int) -> np.ndarray:
    out = np.zeros(length, np.float32)
    cache = {}
    vowel = rng.choice(list(VOWELS))
    for onset, midi, dur in events:
        start = int(onset * SR)
        if start >= length:
            continue
        n = min(int(min(dur, 4.0) * SR) + int(0.3 * SR), length - start)
        key = (midi, n)
        if key not in cache:
            f0 = float(midi_hz(midi))
            render = INSTRUMENTS.get(inst)
            if render is None:
                raise ValueError(f"no sound for {inst}")
            note = render(f0, n, rng, song.style, str(vowel))
            cache[key] = note / (np.abs(note).max() + 1e-6)
        out[start:start + n] += cache[key] * (0.7 + 0.3 * rng.random())
    return out


def _drums(song: Song, rng, length: int, beat: float, tabla_only: bool) -> np.ndarray:
    out = np.zeros(length, np.float32)
    sixteenth = beat / 4
    if tabla_only:
        strokes = [tabla(float(midi_hz(song.key + 60)), rng), tabla(float(midi_hz(song.key + 48)), rng),
                   tabla(float(midi_hz(song.key + 67)), rng)]
        pattern = rng.integers(-1, 3, 16)  # one 16-step cycle, repeated
        steps = [(i, [strokes[pattern[i % 16]]]) for i in range(int(length / SR / sixteenth)) if pattern[i % 16] >= 0]
    else:
        electronic = song.style in ("techno", "pop", "weird")
        k, s, h, oh = kick(rng, electronic), snare(rng), hihat(rng), hihat(rng, open_=True)
        steps = []
        for i in range(int(length / SR / sixteenth)):
            pos, hits = i % 16, []
            if song.style in ("techno", "pop") and pos % 4 == 0:
                hits.append(k)
            elif song.style == "metal" and pos % 2 == 0:
                hits.append(k)
            elif song.style not in ("techno", "pop", "metal") and pos in (0, 8, 10):
                hits.append(k)
            if pos in (4, 12):
                hits.append(s)
            if song.style == "techno" and pos % 4 == 2:
                hits.append(oh)
            elif pos % 2 == 0:
                hits.append(h)
            steps.append((i, hits))
    for i, hits in steps:
        start = int(i * sixteenth * SR + rng.normal(0, 0.004) * SR)
        for hit in hits:
            start = max(start, 0)
            n = min(len(hit), length - start)
            if n > 0:
                out[start:start + n] += hit[:n]
    return out


def render_clip(song: Song, rng) -> np.ndarray:
    """One 29.1 s clip of a song, float32 at 16 kHz, peak set by the song's level.

    Chapter: 01_data
    """
    from scipy.ndimage import uniform_filter1d

    length = CLIP_LEN
    beat = 60.0 / song.bpm
    bars = int(CLIP_SECONDS / (4 * beat)) + 2
    degrees = len(SCALES[song.scale])
    chords = [0, int(rng.integers(1, degrees)), int(rng.integers(1, degrees)), int(rng.integers(0, degrees))]
    parts = []
    melodic = [i for i in song.instruments if i not in ("drums", "tabla")]
    if song.vocal != "none":
        melodic.append(song.vocal)
    for inst in melodic:
        part = _render_part(song, inst, _melody(song, inst, rng, bars, beat, chords), rng, length)
        # instruments and voices enter and leave: silence some 3-s stretches
        if inst not in ("pad", "drone") and rng.random() < 0.5:
            gate = np.repeat(rng.random(11) < 0.75, int(np.ceil(length / 11)))[:length]
            part *= uniform_filter1d(gate.astype(np.float32), 800)  # 50 ms fades
        gain = (1.3 if inst in ("female", "male", "choir") else 1.0) * rng.uniform(0.6, 1.0)
        parts.append(gain * part / (np.abs(part).max() + 1e-6))
    if "drums" in song.instruments or "tabla" in song.instruments:
        drums = _drums(song, rng, length, beat, tabla_only="tabla" in song.instruments)
        parts.append(rng.uniform(0.7, 1.0) * drums / (np.abs(drums).max() + 1e-6))
    mix = np.sum(parts, axis=0) if parts else np.zeros(length, np.float32)
    if song.reverb > 0.1:
        mix = mix + song.reverb * reverb(mix, rng, seconds=0.5 + 3 * song.reverb)
    if song.style == "weird":  # ring modulation and a stutter
        t = np.arange(length) / SR
        mix = mix * np.sin(2 * np.pi * rng.uniform(80, 600) * t).astype(np.float32)
        a = int(rng.integers(0, length - SR))
        mix[a:a + SR] = np.tile(mix[a:a + SR // 8], 8)
    mix = mix / (np.abs(mix).max() + 1e-6)
    if song.level == "loud":
        mix = np.tanh(2.5 * mix) / np.tanh(2.5)
    peak = {"quiet": rng.uniform(0.05, 0.15), "normal": rng.uniform(0.3, 0.6), "loud": rng.uniform(0.85, 0.98)}
    mix = mix * peak[song.level] + rng.standard_normal(length).astype(np.float32) * rng.uniform(1e-4, 2e-3)
    return np.clip(mix, -1, 1).astype(np.float32)

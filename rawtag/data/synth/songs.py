"""Composition: a song's facts, its MTAT tags, its score, and one 29.1 s clip of it mixed.

Taught in chapter 01 (data). `draw_song` picks a style and what it implies (tempo, key, instruments, a
voice, level, reverb) and lists the song's facts; `annotate` turns facts into MTAT tags as its annotators
did (synonyms, misses); `score` writes the clip's parts as a musician would: a chord progression, a bass
line, each instrument in its role (held chords, broken chords, strums, a melody with a repeated rhythm),
the style's drum groove with fills, phrases of four bars in which parts enter and leave, and dynamics;
`render_clip` plays the score on real recorded instruments (`sampler`, a General MIDI SoundFont) and
formant voices, then mixes it with the style's room, compression for loud songs and the song's level.

Chapter: 01_data
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .instruments import reverb, voice
from .sampler import HOLD, play
from .vocabulary import (
    ANNOTATOR,
    BASS,
    CLIP_LEN,
    CLIP_SECONDS,
    CRASH,
    GROOVES,
    KITS,
    PARTS,
    PROGRESSIONS,
    REGISTER,
    RHYTHMS,
    SCALES,
    SR,
    STYLE_PROGRAMS,
    STYLE_ROLES,
    STYLES,
    TABLA_CYCLES,
    TABLA_KEYS,
    TOMS,
    VOWELS,
    midi_hz,
)


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


@dataclass
class Part:
    """One part of a score: who plays it (a General MIDI program, a drum kit or a voice) and its notes,
    each (onset s, MIDI key, duration s, velocity 1-127).

    Chapter: 01_data
    """

    name: str  # the instrument or voice ("bass" and "drums" for the rhythm section)
    program: int | None  # None: a formant voice
    drum: bool
    notes: list[tuple[float, int, float, float]]


class _Grid:
    """The time line of one clip: tempo, bars, the key's scale and the song's progression."""

    def __init__(self, song: Song, rng):
        self.beat = 60.0 / song.bpm
        self.bar = 4 * self.beat
        self.bars = int(CLIP_SECONDS / self.bar) + 1
        self.scale = SCALES[song.scale]
        options = PROGRESSIONS[song.style]
        self.progression = options[int(rng.integers(len(options)))]
        base = {"quiet": 50, "normal": 80, "loud": 108}[song.level]
        self.swell = rng.uniform(-12, 12)  # a crescendo (or diminuendo) across the clip, in velocity steps
        self.base = base
        self.key = song.key

    def degree(self, bar: int) -> int:
        return self.progression[bar % len(self.progression)]

    def pitch(self, degree: int, octave: int) -> int:
        """The MIDI key of a scale degree (any integer; 7 is the octave of 0) around `octave`."""
        n = len(self.scale)
        return self.key + 12 * (octave + degree // n) + self.scale[degree % n]

    def chord(self, bar: int, octave: int, lo: int, hi: int) -> list[int]:
        """The bar's triad (degree, +2, +4 in the scale), each tone moved into [lo, hi]."""
        out = []
        for step in (0, 2, 4):
            p = self.pitch(self.degree(bar) + step, octave)
            while p < lo:
                p += 12
            while p > hi:
                p -= 12
            out.append(p)
        return sorted(out)

    def velocity(self, t: float, accent: float, rng) -> float:
        swell = self.swell * (t / CLIP_SECONDS - 0.5)
        return float(np.clip(self.base + accent + swell + rng.normal(0, 5), 20, 127))


def _playing(rng, bars: int, core: bool) -> np.ndarray:
    """Which bars a part plays: core parts always; others sit out whole phrases of four bars now and then."""
    phrases = (bars + 3) // 4
    on = np.ones(phrases, bool) if core else rng.random(phrases) < 0.75
    if not on.any():
        on[int(rng.integers(phrases))] = True
    return np.repeat(on, 4)[:bars]


def _role(song: Song, inst: str) -> str:
    return STYLE_ROLES.get((song.style, inst), PARTS[inst][0] if inst in PARTS else "lead")


def _notes(role: str, grid: _Grid, inst: str, playing, rng) -> list:
    """A part's notes for its role, in the instrument's register."""
    lo, hi = REGISTER.get(inst, (36, 60))
    mid = (lo + hi) // 2
    octave = (mid - grid.key) // 12 - 1
    notes = []
    if role in ("chords", "drone"):
        for b in np.flatnonzero(playing):
            t = b * grid.bar
            keys = [grid.pitch(0, octave - 1), grid.pitch(4, octave - 1)] if role == "drone" else \
                grid.chord(b, octave, lo, hi)
            for k in keys:
                notes.append((t, k, min(grid.bar * 1.02, HOLD), grid.velocity(t, -12, rng)))
    elif role in ("arp", "strum", "power", "comp"):
        step = {"arp": grid.beat / (4 if grid.beat > 0.5 else 2), "strum": grid.beat / 2, "power": grid.beat / 2,
                "comp": grid.beat}[role]
        pattern = rng.permutation(3) if role == "arp" else None
        for b in np.flatnonzero(playing):
            chord = grid.chord(b, octave, lo, hi)
            if role == "power":  # root, fifth, octave
                chord = [chord[0], chord[0] + 7, chord[0] + 12]
            for k in range(int(round(grid.bar / step))):
                t = b * grid.bar + k * step
                accent = 8 if k % 4 == 0 else 0
                if role == "arp":
                    up = (pattern[k % 3] + 3 * ((k // 3) % 2)) % 4
                    keys = [chord[up % 3] + 12 * (up // 3)]
                elif role == "strum" and k % 2 and rng.random() < 0.4:
                    continue  # a skipped up-stroke
                else:
                    keys = chord
                for j, key in enumerate(keys):  # a strum sounds its strings a few ms apart
                    notes.append((t + (0.008 * j if role == "strum" else 0.0), key, step * 0.95,
                                  grid.velocity(t, accent - 6 * (role == "comp"), rng)))
    else:  # a melody: one rhythm cell repeated as a motif, chord tones on strong beats, steps between
        cell = RHYTHMS[int(rng.integers(len(RHYTHMS)))]
        if grid.beat < 0.45:  # fast songs: longer notes
            cell = tuple(2 * c for c in cell)
        contour = rng.choice([-1, 1], size=len(cell)) * rng.integers(0, 3, size=len(cell))
        degree = int(rng.integers(0, 7))
        span = sum(cell) * grid.beat  # one or two bars
        for u in range(int(np.ceil(grid.bars * grid.bar / span))):
            t = u * span
            b = int(round(t / grid.bar))
            if not playing[min(b, len(playing) - 1)]:
                continue
            for k, beats in enumerate(cell):
                dur = beats * grid.beat
                if k == 0:  # a chord tone on the downbeat
                    target = grid.degree(b) + int(rng.choice([0, 2, 4]))
                    degree = target + 7 * round((degree - target) / 7)
                else:
                    degree += int(contour[k]) + int(rng.integers(-1, 2))
                key = grid.pitch(degree, octave)
                while key < lo:
                    key, degree = key + 12, degree + 7
                while key > hi:
                    key, degree = key - 12, degree - 7
                if rng.random() > 0.1 and not (u % 4 == 3 and k == len(cell) - 1):  # a breath at phrase ends
                    notes.append((t, key, min(dur * 0.97, HOLD), grid.velocity(t, 6 if k == 0 else 0, rng)))
                t += dur
    return notes


def _bass(song: Song, grid: _Grid, rng, strings: bool) -> Part | None:
    line, programs = BASS[song.style]
    if line is None or (song.style in ("classical", "opera", "choral", "baroque") and not strings):
        return None  # orchestral music has a bass line only where its strings play one
    notes = []
    for b in range(grid.bars):
        root = grid.pitch(grid.degree(b), 2)
        while root > 52:
            root -= 12
        t0 = b * grid.bar
        hits = {"eighths": [(i / 2, root) for i in range(8)],
                "offbeat": [(i + 0.5, root + 12 * (i % 2)) for i in range(4)],
                "root-fifth": [(0, root), (2, root + 7 - 12 * (root + 7 > 52))],
                "pop": [(0, root), (1.5, root), (2, root), (3, root + 7)],
                "held": [(0, root)],
                "walking": [(i, grid.pitch(grid.degree(b) + i, 2)) for i in range(4)]}[line]
        for i, (beats, key) in enumerate(hits):
            length = {"held": 4, "root-fifth": 2}.get(line, 0.5 if line in ("eighths", "offbeat") else 1)
            t = t0 + beats * grid.beat
            notes.append((t, key, min(length * grid.beat * 0.95, HOLD), grid.velocity(t, 4 * (i == 0), rng)))
    return Part("bass", int(programs[int(rng.integers(len(programs)))]), False, notes)


def _drum_part(song: Song, grid: _Grid, rng, tabla: bool) -> Part:
    step = grid.beat / 4
    notes = []
    if tabla:
        cycle = TABLA_CYCLES[int(rng.integers(len(TABLA_CYCLES)))]
        for i in range(grid.bars * 16):
            t = i * step + rng.normal(0, 0.006)
            stroke = cycle[i % 16]
            notes.append((max(t, 0.0), TABLA_KEYS[stroke], step, grid.velocity(t, 10 * (i % 4 == 0) - 8, rng)))
        return Part("tabla", 0, True, notes)
    grooves = GROOVES[song.style]
    groove = grooves[int(rng.integers(len(grooves)))]
    kits = KITS[song.style]
    breaks = set(rng.choice(grid.bars, size=int(rng.integers(0, 2)), replace=False).tolist())
    for b in range(grid.bars):
        if b in breaks:
            continue  # the drums stop for a bar
        fill = b % 4 == 3 and rng.random() < 0.6
        for drum, steps in groove.items():
            for s in steps:
                if fill and s >= 8:
                    continue
                t = b * grid.bar + s * step + rng.normal(0, 0.004)
                notes.append((max(t, 0.0), drum, step, grid.velocity(t, 10 * (s % 4 == 0) - 4 * (drum > 40), rng)))
        if fill:  # toms down the second half of the bar, a crash on the next downbeat
            for s in range(8, 16):
                t = b * grid.bar + s * step
                notes.append((t, TOMS[3 - (s - 8) // 2], step, grid.velocity(t, 4, rng)))
            notes.append(((b + 1) * grid.bar, CRASH, step, grid.velocity(t, 10, rng)))
        elif b % 4 == 0:
            notes.append((b * grid.bar, CRASH, step, grid.velocity(b * grid.bar, 6, rng)))
    return Part("drums", int(kits[int(rng.integers(len(kits)))]), True, notes)


def score(song: Song, rng) -> list[Part]:
    """The parts of one clip of `song`: each instrument in its role, a bass line and drums where the style
    has them, and the voice's melody.

    Chapter: 01_data
    """
    grid = _Grid(song, rng)
    parts = []
    melodic = [i for i in song.instruments if i not in ("drums", "tabla")]
    singers = [] if song.vocal == "none" else [song.vocal]
    for inst in melodic + singers:
        role = "chords" if inst == "choir" else _role(song, inst)
        if role == "bass":
            role = "lead"
        core = len(melodic + singers) == 1 or inst in singers or role in ("chords", "drone") or inst == melodic[0]
        notes = _notes(role, grid, inst, _playing(rng, grid.bars, core), rng)
        if inst in ("female", "male"):
            program = None
        else:
            programs = STYLE_PROGRAMS.get((song.style, inst), PARTS[inst][1])
            program = int(programs[int(rng.integers(len(programs)))])
        parts.append(Part(inst, program, False, notes))
    bass = _bass(song, grid, rng, strings="strings" in song.instruments)
    if bass is not None:
        parts.append(bass)
    if "drums" in song.instruments or "tabla" in song.instruments:
        parts.append(_drum_part(song, grid, rng, tabla="tabla" in song.instruments))
    return parts


def _sing(song: Song, part: Part, rng, length: int) -> np.ndarray:
    """A formant voice singing a part's notes, one vowel per phrase."""
    out = np.zeros(length, np.float32)
    vowels = list(VOWELS)
    for onset, key, duration, velocity in part.notes:
        start = int(onset * SR)
        n = min(int((duration + 0.1) * SR), length - start)
        if n <= 0:
            continue
        wide = song.style == "opera"
        tone = voice(float(midi_hz(key)), n, rng, vowel=vowels[int(onset // 4) % len(vowels)],
                     vibrato=0.025 if wide else 0.01, formant_shift=1.15 if part.name == "female" else 1.0)
        out[start:start + n] += velocity / 100 * tone / (np.abs(tone).max() + 1e-6)
    return out


def _recording_chain(x: np.ndarray, rng) -> np.ndarray:
    """Each recording's own microphones, desk and mastering colour its spectrum: a low cut (20-120 Hz), a
    high cut (4-7.5 kHz) and a tilt of +-3 dB per octave around 1 kHz, drawn per clip, so that no tag can
    be told by the exact balance of bass and treble of one production."""
    f = np.fft.rfftfreq(len(x), 1 / SR)
    low, high, tilt = rng.uniform(20, 120), rng.uniform(4000, 7500), rng.uniform(-3, 3)
    octaves = np.log2(np.maximum(f, 1.0) / 1000.0)
    gain = 10 ** (tilt * np.clip(octaves, -5, 3) / 20)
    gain /= np.sqrt(1 + (low / np.maximum(f, 1e-3)) ** 4) * np.sqrt(1 + (f / high) ** 8)  # 2nd / 4th order
    return np.fft.irfft(np.fft.rfft(x) * gain, len(x)).astype(np.float32)


#: How loud each part sits in the mix, relative to the others.
BALANCE = {"bass": 0.7, "drums": 0.9, "tabla": 0.8, "female": 1.0, "male": 1.0, "chords": 0.55, "drone": 0.4}


def render_clip(song: Song, rng, soundfont: str | None = None) -> np.ndarray:
    """One 29.1 s clip of a song, float32 at 16 kHz: its score played on recorded instruments (of the bank
    `soundfont`, None: the default) and formant voices, mixed, with the style's room, compression when
    loud, and a peak set by the song's level.

    Chapter: 01_data
    """
    length = CLIP_LEN
    mix = np.zeros(length, np.float32)
    for part in score(song, rng):
        if part.program is None:
            audio = _sing(song, part, rng, length)
        else:
            audio = play(part.notes, part.program, length, drum=part.drum,
                         release=0.4 if _role(song, part.name) in ("chords", "drone") else 0.12,
                         soundfont=soundfont)
        peak = np.abs(audio).max()
        if peak == 0:
            continue
        role = part.name if part.name in BALANCE else _role(song, part.name)
        mix += BALANCE.get(role, 0.8) * rng.uniform(0.75, 1.0) * audio / peak
    if song.reverb > 0.1:
        mix = mix + song.reverb * reverb(mix, rng, seconds=0.5 + 3 * song.reverb)
    if song.style == "weird":  # ring modulation and a stutter
        t = np.arange(length) / SR
        mix = mix * np.sin(2 * np.pi * rng.uniform(80, 600) * t).astype(np.float32)
        a = int(rng.integers(0, length - SR))
        mix[a:a + SR] = np.tile(mix[a:a + SR // 8], 8)
    mix = _recording_chain(mix, rng)
    mix = mix / (np.abs(mix).max() + 1e-6)
    if song.level == "loud":  # a compressed, limited master
        mix = np.tanh(3.0 * mix) / np.tanh(3.0)
    peak = {"quiet": rng.uniform(0.08, 0.4), "normal": rng.uniform(0.25, 0.8), "loud": rng.uniform(0.6, 0.98)}
    mix = mix * peak[song.level] + rng.standard_normal(length).astype(np.float32) * rng.uniform(1e-4, 1e-3)
    return np.clip(mix, -1, 1).astype(np.float32)

"""A synthetic, MTAT-shaped tagging set: music made from sound mechanisms, labelled like MTAT.

Taught in chapter 01 (data). `write_synthetic` writes the SAME on-disk format as MTAT: an
`annotations_final.csv` with MTAT's 188 tag columns, a `clip_info_final.csv`, and 29.1 s mono MP3s at
16 kHz (32 kbit/s) in folders 0-f, so `rawtag prepare` runs on it unchanged.

How it teaches something real:
- each tag is made by its own mechanism: plucked strings as decaying harmonic modes (guitar, harp,
  harpsichord; sitar adds a buzzing bridge and glides), stiff-string inharmonic partials (piano), bowed
  tones with vibrato (violin, cello, strings), breathy tones (flute), formant-filtered voices (female,
  male, opera, choir), drum patterns at a tempo (drums, beat, fast, slow), detuned saw synths (synth,
  techno), reverberant pads (ambient), ring modulation and stutter (weird), and level (loud, quiet);
- tags co-occur as on MTAT: a song has a style that implies its instruments (classical: strings, piano,
  harpsichord, no drums; techno: synth and beat), and instruments enter and leave across the clip;
- labels are weak: each true fact is annotated with a per-tag probability (synonyms like "female" /
  "woman" / "female vocal" are each used by some annotators only), then every positive is dropped
  with probability `label_drop`;
- style frequencies are long-tailed, and clips of one song share a folder (and so a split).
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import RESUME, free_bytes, human, replacing, require_space, write_text
from ..progress import counter
from .mtat import ANNOTATIONS, CLIP_INFO, MTAT_TAGS

SR = 16_000
CLIP_SECONDS = 29.1
CLIP_LEN = int(round(SR * CLIP_SECONDS))  # 465,600 samples, as an MTAT clip
MAX_FREQ = 5_500.0  # partials above this are not rendered: the prepared set is 12 kHz (Nyquist 6 kHz)
MP3_LEVEL = 0.85
FOLDER_CYCLE = "c3f9a0d6e1b74825"  # a fixed order of the 16 folders, valid (c) first

# Styles: (weight, tempo range in bpm, instrument -> probability, vocal -> probability, level weights
# (quiet, normal, loud), reverb). Weights are long-tailed on purpose.
STYLES = {
    "classical": (30, (60, 130), {"strings": .7, "violin": .5, "cello": .4, "piano": .45, "flute": .3,
                                  "harp": .2, "harpsichord": .12},
                  {"none": .85, "female": .05, "male": .03, "choir": .07}, (.4, .55, .05), .45),
    "techno": (18, (125, 150), {"synth": .95, "drums": 1.0, "pad": .3}, {"none": .9, "female": .1},
               (.05, .55, .4), .15),
    "rock": (14, (100, 160), {"eguitar": .95, "drums": 1.0, "piano": .1},
             {"none": .4, "male": .45, "female": .15}, (.02, .5, .48), .1),
    "ambient": (11, (55, 80), {"pad": 1.0, "piano": .35, "flute": .2, "harp": .2, "synth": .2},
                {"none": .9, "female": .1}, (.6, .4, 0), .7),
    "baroque": (8, (80, 140), {"harpsichord": .95, "strings": .5, "violin": .35, "cello": .35, "flute": .3},
                {"none": .95, "choir": .05}, (.3, .65, .05), .3),
    "pop": (8, (90, 125), {"drums": .9, "synth": .5, "guitar": .4, "piano": .4},
            {"female": .5, "male": .4, "none": .1}, (.1, .6, .3), .2),
    "indian": (7, (70, 140), {"sitar": .95, "tabla": .85, "drone": .8, "flute": .15},
               {"none": .7, "male": .15, "female": .15}, (.2, .7, .1), .25),
    "opera": (5, (60, 110), {"strings": .8, "piano": .3, "cello": .3},
              {"female": .55, "male": .35, "choir": .1}, (.25, .6, .15), .5),
    "choral": (4, (55, 90), {"strings": .3}, {"choir": 1.0}, (.5, .5, 0), .6),
    "metal": (4, (150, 190), {"eguitar": 1.0, "drums": 1.0}, {"male": .7, "none": .3}, (0, .2, .8), .05),
    "country": (4, (90, 140), {"guitar": 1.0, "drums": .6, "violin": .3},
                {"male": .55, "female": .35, "none": .1}, (.1, .75, .15), .1),
    "weird": (3, (60, 160), {"synth": .6, "pad": .4, "piano": .3, "drums": .3}, {"none": .85, "male": .15},
              (.3, .5, .2), .3),
}

# The annotator: for each fact about a clip, the MTAT tags it may receive and the chance of each.
ANNOTATOR = {
    "style:classical": {"classical": .85, "classic": .3},
    "style:baroque": {"classical": .7, "classic": .25},
    "style:opera": {"opera": .85, "classical": .6, "classic": .2},
    "style:choral": {"choral": .5, "classical": .4},
    "style:techno": {"techno": .85, "electronic": .75, "dance": .35},
    "style:rock": {"rock": .85},
    "style:metal": {"metal": .85, "rock": .5},
    "style:pop": {"pop": .8, "dance": .25},
    "style:country": {"country": .85},
    "style:indian": {"indian": .85},
    "style:ambient": {"ambient": .85, "new age": .5},
    "style:weird": {"weird": .8},
    "inst:strings": {"strings": .8},
    "inst:violin": {"violin": .8, "strings": .3},
    "inst:cello": {"cello": .8, "strings": .3},
    "inst:piano": {"piano": .85},
    "inst:harpsichord": {"harpsichord": .9},
    "inst:harp": {"harp": .85},
    "inst:flute": {"flute": .85},
    "inst:guitar": {"guitar": .85},
    "inst:eguitar": {"guitar": .85},
    "inst:sitar": {"sitar": .9},
    "inst:synth": {"synth": .8, "electronic": .4},
    "inst:drums": {"drums": .75, "beat": .45, "beats": .25},
    "inst:tabla": {"drums": .3},
    "vocal:any": {"vocal": .45, "vocals": .35, "singing": .35, "voice": .25},
    "vocal:female": {"female": .6, "woman": .35, "female vocal": .3, "female voice": .25},
    "vocal:male": {"male": .55, "man": .35, "male vocal": .35, "male voice": .25},
    "vocal:choir": {"choir": .8, "choral": .4},
    "vocal:none": {"no vocals": .2, "no vocal": .15, "no voice": .12},
    "tempo:fast": {"fast": .7},
    "tempo:slow": {"slow": .75},
    "level:loud": {"loud": .7},
    "level:quiet": {"quiet": .6, "soft": .45},
    "solo": {"solo": .6},
}
#: The MTAT tags the synthetic set can produce (all in MTAT's top 50).
SYNTH_TAGS = sorted({t for tags in ANNOTATOR.values() for t in tags})

SCALES = {"major": [0, 2, 4, 5, 7, 9, 11], "minor": [0, 2, 3, 5, 7, 8, 10],
          "raga": [0, 1, 4, 5, 7, 8, 11], "pentatonic": [0, 2, 4, 7, 9]}
REGISTER = {  # (lowest, highest) MIDI note of each melodic instrument
    "violin": (55, 88), "cello": (36, 64), "strings": (48, 76), "piano": (40, 84), "flute": (60, 93),
    "harp": (43, 84), "harpsichord": (48, 84), "guitar": (40, 76), "eguitar": (40, 64), "sitar": (50, 76),
    "synth": (48, 79), "pad": (40, 72), "drone": (36, 48), "female": (57, 76), "male": (43, 64),
    "choir": (48, 72),
}
VOWELS = {"a": (800, 1150, 2900), "e": (400, 1700, 2600), "i": (300, 2200, 3000), "o": (450, 800, 2830),
          "u": (325, 700, 2530)}


def midi_hz(m):
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=np.float64) - 69) / 12)


# ---------------------------------------------------------------------------------- sound mechanisms

def _partials(freqs, amps, decays, length, rng, glide=None):
    """Sum of sinusoidal modes: freqs/amps/decays [P], `glide` an optional pitch ratio curve [length]."""
    keep = (freqs < MAX_FREQ) & (amps > 1e-4)
    freqs, amps, decays = freqs[keep], amps[keep], decays[keep]
    t = np.arange(length, dtype=np.float32) / SR
    if glide is None:
        phase = 2 * np.pi * freqs[:, None].astype(np.float32) * t
    else:
        phase = 2 * np.pi * freqs[:, None].astype(np.float32) * (np.cumsum(glide, dtype=np.float32) / SR)
    phase += rng.uniform(0, 2 * np.pi, (len(freqs), 1)).astype(np.float32)
    env = np.exp(-decays[:, None].astype(np.float32) * t)
    return (amps[:, None].astype(np.float32) * env * np.sin(phase)).sum(axis=0)


def pluck(f0, length, rng, *, position=0.2, decay=1.5, brightness=0.8, inharmonic=0.0, glide=None):
    """A plucked (or struck) string as decaying modes: pluck position shapes the spectrum (|sin(n pi p)|/n),
    higher modes decay faster, stiffness (`inharmonic`) stretches the partials as on a piano."""
    n = np.arange(1, 40, dtype=np.float64)
    audible = min(length, int(6.9 / decay * SR))  # the fundamental has fallen by 60 dB after this
    if glide is not None:
        glide = glide[:audible]
    freqs = f0 * n * np.sqrt(1 + inharmonic * n * n)
    amps = np.abs(np.sin(n * np.pi * position)) / n * brightness ** (n - 1)
    decays = decay * (1 + 0.08 * n * n * (1 - brightness + 0.1))
    out = np.zeros(length, np.float32)
    out[:audible] = _partials(freqs, amps, decays, audible, rng, glide)
    attack = min(length, int(0.003 * SR))
    out[:attack] *= np.linspace(0, 1, attack, dtype=np.float32)
    return out


def sitar(f0, length, rng):
    """A sitar: bright plucked string whose buzzing bridge sweeps a comb over the partials, with a glide."""
    glide = 1 + 0.03 * np.clip(np.arange(length) / SR - 0.25, 0, 0.3) * rng.choice([0, 1, 2])
    tone = pluck(f0, length, rng, position=0.08, decay=0.9, brightness=0.93, glide=glide)
    t = np.arange(length, dtype=np.float32) / SR
    buzz = 1 + 0.6 * np.sin(2 * np.pi * (12 + 25 * t) * t)
    return tone * buzz


def _tone(f0, ratios, amps, length, rng, glide=None):
    """A sustained tone with a fixed spectrum, by wavetable: one period holds the partials `ratios` x f0
    (those below MAX_FREQ) and is read at the instantaneous pitch f0 x `glide`. O(length), not
    O(partials x length) as for the decaying modes of `_partials`."""
    ratios, amps = np.asarray(ratios, float), np.asarray(amps, float)
    keep = ratios * f0 < MAX_FREQ
    size = 2048
    k = np.arange(size) / size
    phases = rng.uniform(0, 2 * np.pi, keep.sum())
    table = (amps[keep, None] * np.sin(2 * np.pi * ratios[keep, None] * k + phases[:, None])).sum(axis=0)
    step = np.full(length, f0 / SR) if glide is None else f0 * glide / SR
    pos = (np.cumsum(step) % 1.0) * size
    i = pos.astype(np.int64)
    frac = (pos - i).astype(np.float32)
    table = np.append(table, table[0]).astype(np.float32)
    return table[i] * (1 - frac) + table[i + 1] * frac


def bowed(f0, length, rng, *, vibrato=5.5, depth=0.006, brightness=0.75):
    """A bowed string: saw-like harmonics with a body resonance, slow attack, sustained, with vibrato."""
    n = np.arange(1, 30, dtype=np.float64)
    t = np.arange(length) / SR
    glide = 1 + depth * np.sin(2 * np.pi * vibrato * t + rng.uniform(0, 6.3))
    body = 1 + 0.8 * np.exp(-((n * f0 - 1100) / 500) ** 2)
    return _tone(f0, n, brightness ** n / n * body, length, rng, glide) * _envelope(length, 0.12, 0.15)


def flute(f0, length, rng):
    """A flute: nearly sinusoidal tone, soft vibrato, and band-limited breath noise."""
    t = np.arange(length) / SR
    glide = 1 + 0.004 * np.sin(2 * np.pi * 5 * t)
    tone = _tone(f0, [1, 2, 3, 4], [1.0, .35, .12, .05], length, rng, glide)
    breath = _bandpass(rng.standard_normal(length).astype(np.float32), f0 * 0.8, f0 * 3)
    return (tone + 0.25 * breath / (np.abs(breath).max() + 1e-6)) * _envelope(length, 0.06, 0.1)


def voice(f0, length, rng, *, vowel="a", vibrato=0.01, formant_shift=1.0):
    """A sung vowel: a glottal harmonic series shaped by three formant resonances, with vibrato."""
    n = np.arange(1, int(MAX_FREQ / f0) + 1, dtype=np.float64)
    formants = np.array(VOWELS[vowel]) * formant_shift
    envelope = sum(np.exp(-((n * f0 - fc) / (60 + 0.08 * fc)) ** 2) * g
                   for fc, g in zip(formants, (1.0, 0.6, 0.3)))
    t = np.arange(length) / SR
    glide = 1 + vibrato * np.sin(2 * np.pi * 5.8 * t) * np.clip(t / 0.3, 0, 1)
    return _tone(f0, n, (envelope + 0.02) / n ** 0.6, length, rng, glide) * _envelope(length, 0.05, 0.1)


def saw_synth(f0, length, rng, *, detune=0.006):
    """A synth: two detuned sawtooths, a bright one fading into a dark one (a closing low-pass)."""
    n = np.arange(1, 40, dtype=np.float64)
    fade = np.exp(-np.arange(length, dtype=np.float32) / SR * 4)
    out = np.zeros(length, np.float32)
    for d in (1 - detune, 1 + detune):
        out += fade * _tone(f0 * d, n, 1 / n, length, rng) + (1 - fade) * _tone(f0 * d, n, 0.6 ** n / n, length, rng)
    return out * _envelope(length, 0.01, 0.05)


def pad(f0, length, rng):
    """A pad: slow-attack detuned saws, darker than the synth (reverb is added at mixing)."""
    n = np.arange(1, 12, dtype=np.float64)
    out = sum(_tone(f0 * d, n, 0.7 ** n / n, length, rng) for d in (0.995, 1.0, 1.005))
    return out * _envelope(length, attack=0.6, release=0.8)


def kick(rng, electronic=False):
    t = np.arange(int(0.35 * SR)) / SR
    sweep = 45 + (110 if electronic else 70) * np.exp(-t * 30)
    return (np.sin(2 * np.pi * np.cumsum(sweep) / SR) * np.exp(-t * (8 if electronic else 14))).astype(np.float32)


def snare(rng):
    t = np.arange(int(0.2 * SR)) / SR
    noise = _bandpass(rng.standard_normal(len(t)).astype(np.float32), 1500, 5000)
    return ((0.6 * noise / (np.abs(noise).max() + 1e-6) + 0.4 * np.sin(2 * np.pi * 190 * t)) * np.exp(-t * 20)
            ).astype(np.float32)


def hihat(rng, open_=False):
    t = np.arange(int((0.25 if open_ else 0.06) * SR)) / SR
    noise = _bandpass(rng.standard_normal(len(t)).astype(np.float32), 5000, 7900)
    return (noise / (np.abs(noise).max() + 1e-6) * np.exp(-t * (12 if open_ else 60)) * 0.5).astype(np.float32)


def tabla(f0, rng):
    """A tabla stroke: a tuned membrane with nearly harmonic modes and a small downward pitch bend."""
    length = int(0.4 * SR)
    glide = (1 + 0.04 * np.exp(-np.arange(length) / SR * 25)).astype(np.float32)
    return pluck(f0, length, rng, position=0.3, decay=7.0, brightness=0.6, glide=glide)


def _envelope(length, attack, release):
    env = np.ones(length, np.float32)
    a, r = min(length, int(attack * SR)), min(length, int(release * SR))
    env[:a] = np.linspace(0, 1, a)
    if r:
        env[-r:] *= np.linspace(1, 0, r)
    return env


def _bandpass(x, lo, hi):
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / SR)
    spec[(f < lo) | (f > hi)] = 0
    return np.fft.irfft(spec, len(x)).astype(np.float32)


def reverb(x, rng, seconds):
    """Convolution with exponentially decaying noise: `seconds` is the time to fall by 60 dB."""
    from scipy.signal import fftconvolve

    t = np.arange(int(seconds * SR)) / SR
    ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / seconds)
    ir[0] = 0
    wet = fftconvolve(x, ir.astype(np.float32))[: len(x)]
    return wet / (np.abs(ir).sum() ** 0.5 * 3)


# -------------------------------------------------------------------------------------- composition

@dataclass
class Song:
    """The facts of one song: what a listener could hear, and what the tags are drawn from."""

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
    """Turn facts into MTAT tags the way MTAT's annotators did: some synonyms, some misses."""
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
            if inst in ("guitar",):
                note = pluck(f0, n, rng, position=0.2, decay=1.6, brightness=0.8)
            elif inst == "eguitar":
                note = np.tanh(6 * pluck(f0, n, rng, position=0.15, decay=0.7, brightness=0.85))
            elif inst == "harp":
                note = pluck(f0, n, rng, position=0.5, decay=0.7, brightness=0.6)
            elif inst == "harpsichord":
                note = pluck(f0, n, rng, position=0.08, decay=2.2, brightness=0.95)
            elif inst == "piano":
                note = pluck(f0, n, rng, position=0.12, decay=1.1, brightness=0.7, inharmonic=4e-4)
            elif inst == "sitar":
                note = sitar(f0, n, rng)
            elif inst in ("violin", "cello", "strings"):
                note = bowed(f0, n, rng) if inst != "strings" else sum(
                    bowed(f0 * d, n, rng, depth=0.004) for d in (0.997, 1.0, 1.003)) / 2
            elif inst == "flute":
                note = flute(f0, n, rng)
            elif inst in ("female", "male"):
                vib = 0.025 if song.style == "opera" else 0.01
                note = voice(f0, n, rng, vowel=str(vowel), vibrato=vib,
                             formant_shift=1.15 if inst == "female" else 1.0)
            elif inst == "choir":
                note = sum(voice(f0 * d, n, rng, vowel=str(vowel), vibrato=0.012,
                                 formant_shift=1.0 + 0.15 * (j % 2)) for j, d in enumerate((0.996, 1.0, 1.004, 2.0)))
            elif inst == "synth":
                note = saw_synth(f0, n, rng)
            elif inst in ("pad", "drone"):
                note = pad(f0, n, rng)
            else:
                raise ValueError(f"no sound for {inst}")
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
    """One 29.1 s clip of a song, float32 at 16 kHz, peak set by the song's level."""
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


# ---------------------------------------------------------------------------------------- on disk

@dataclass
class ClipPlan:
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
            path = f"{folder}/{artist}-album_{song_no:05d}-{segment + 1:02d}-song_{song_no:05d}-{start}-{start + 29}.mp3"
            tags = annotate(song.facts, np.random.default_rng([seed, song_no, segment, 1]), label_drop)
            out.append(ClipPlan(len(out) + 1, path, song, (seed, song_no), segment, tags))
        song_no += 1
        if progress is not None and song_no % 1000 == 0:
            progress(len(out))
    return out


def render_plan(item: ClipPlan) -> np.ndarray:
    """The audio of one planned clip (deterministic: its own random stream)."""
    return render_clip(item.song, np.random.default_rng([*item.song_seed, item.segment, 2]))


class SynthError(RuntimeError):
    """A synthetic set that cannot be written; the message says what to do."""


def write_clip(item: ClipPlan, out_dir: str) -> str:
    """Render and encode one clip as 16 kHz 32 kbit/s MP3, atomically (a temporary name, then a rename)."""
    import soundfile as sf

    dest = Path(out_dir) / item.path
    if dest.exists():
        return item.path
    dest.parent.mkdir(parents=True, exist_ok=True)
    audio = render_plan(item)
    with replacing(dest) as tmp:
        try:
            sf.write(tmp, audio, SR, format="MP3", subtype="MPEG_LAYER_III", bitrate_mode="CONSTANT",
                     compression_level=MP3_LEVEL)
        except sf.LibsndfileError as e:  # libsndfile reports a full disk as "System error", without errno
            reason = e.error_string or "write failed"
            raise SynthError(f"cannot write {dest} (libsndfile: {reason}); the disk may be full "
                             f"({human(free_bytes(dest.parent))} free) or a file-size limit reached; "
                             f"{RESUME}") from None
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

    A folder is ours when it is new or empty, when its `synth.json` names the same seed and label drop, or
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
        if all(old.get(k) == v for k, v in params.items()):
            return False
        what = f"a synthetic set with seed {old.get('seed')} and label drop {old.get('label_drop')}"
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
                    label_drop: float = 0.1, progress: bool = True, force: bool = False) -> Path:
    """Write a synthetic set in MTAT's on-disk format into `out`. Chapter 01.

    Resumable and idempotent: finished MP3s are kept (each is written under a temporary name and renamed),
    and the annotation files are written last, so a folder with `annotations_final.csv` is complete.
    `synth.json`, written first, records the seed and label drop: a rerun with others, or into a folder
    holding another dataset (an MTAT download), is refused unless `force` (see `_claim`). The free disk
    space is checked against the set's estimated size before anything is written.
    """
    from concurrent.futures import ProcessPoolExecutor

    _check_arguments(clips, seed, label_drop)
    out = Path(out)
    if progress:
        print(f"synth: {clips:,} clips (about {human(clips * CLIP_BYTES)}) into {out}", flush=True)
    have = _audio_bytes(out) if out.is_dir() else 0
    require_space(out, clips * CLIP_BYTES - have, f"a synthetic set of {clips:,} clips")
    with counter(clips, "plan", "clip", enabled=progress and clips >= 20_000) as bar:
        items = plan(clips, seed, label_drop, progress=lambda k: bar.update(k - bar.n))
        bar.update(len(items) - bar.n)
    tables = _tables(items)
    params = {"format": 1, "seed": int(seed), "label_drop": float(label_drop)}
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
                write_clip(it, str(out))
                bar.update()
        else:
            with ProcessPoolExecutor(workers) as pool:
                for _ in pool.map(write_clip, todo, [str(out)] * len(todo), chunksize=1):
                    bar.update()
    for name in (CLIP_INFO, ANNOTATIONS):  # the annotations last: with them, the folder is complete
        with replacing(out / name) as tmp:
            Path(tmp).write_bytes(tables[name])
    return out

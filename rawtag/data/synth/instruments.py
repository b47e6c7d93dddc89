"""What the sampler has no recording of: sung voices, and the room.

Taught in chapter 01 (data). The instruments of the synthetic set are recordings (`sampler`); a General
MIDI SoundFont has no singer, so a lead voice is made from how a voice works: a glottal harmonic series
shaped by three formant resonances (the vowel), with vibrato (`voice`). `reverb` puts the mix in a room:
a convolution with exponentially decaying noise.

Chapter: 01_data
"""
from __future__ import annotations

import numpy as np

from .vocabulary import MAX_FREQ, SR, VOWELS


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


def voice(f0, length, rng, *, vowel="a", vibrato=0.01, formant_shift=1.0):
    """A sung vowel: a glottal harmonic series shaped by three formant resonances, with vibrato.

    Chapter: 01_data
    """
    n = np.arange(1, int(MAX_FREQ / f0) + 1, dtype=np.float64)
    formants = np.array(VOWELS[vowel]) * formant_shift
    envelope = sum(np.exp(-((n * f0 - fc) / (60 + 0.08 * fc)) ** 2) * g
                   for fc, g in zip(formants, (1.0, 0.6, 0.3), strict=True))
    t = np.arange(length) / SR
    glide = 1 + vibrato * np.sin(2 * np.pi * 5.8 * t) * np.clip(t / 0.3, 0, 1)
    return _tone(f0, n, (envelope + 0.02) / n ** 0.6, length, rng, glide) * _envelope(length, 0.05, 0.1)


def _envelope(length, attack, release):
    env = np.ones(length, np.float32)
    a, r = min(length, int(attack * SR)), min(length, int(release * SR))
    env[:a] = np.linspace(0, 1, a)
    if r:
        env[-r:] *= np.linspace(1, 0, r)
    return env


def reverb(x, rng, seconds):
    """Convolution with exponentially decaying noise: `seconds` is the time to fall by 60 dB.

    Chapter: 01_data
    """
    from scipy.signal import fftconvolve

    t = np.arange(int(seconds * SR)) / SR
    ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / seconds)
    ir[0] = 0
    wet = fftconvolve(x, ir.astype(np.float32))[: len(x)]
    return wet / (np.abs(ir).sum() ** 0.5 * 3)

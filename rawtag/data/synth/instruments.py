"""The sound mechanisms: every instrument and voice of the synthetic set, made from how it sounds.

Taught in chapter 01 (data). Plucked and struck strings are decaying harmonic modes (`pluck`; `sitar`
adds a buzzing bridge), bowed strings, flutes, voices and synths are sustained wavetable tones with
vibrato, breath or formants, drums are short noise and pitch-swept bursts, and `reverb` convolves with
decaying noise. `INSTRUMENTS` maps each melodic instrument (and voice) to the renderer of one of its
notes; `rawtag.data.synth.songs` plays a part's notes through it.

Chapter: 01_data
"""
from __future__ import annotations

import numpy as np

from .vocabulary import MAX_FREQ, SR, VOWELS


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
    higher modes decay faster, stiffness (`inharmonic`) stretches the partials as on a piano.

    Chapter: 01_data
    """
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
    """A sitar: bright plucked string whose buzzing bridge sweeps a comb over the partials, with a glide.

    Chapter: 01_data
    """
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
    """A bowed string: saw-like harmonics with a body resonance, slow attack, sustained, with vibrato.

    Chapter: 01_data
    """
    n = np.arange(1, 30, dtype=np.float64)
    t = np.arange(length) / SR
    glide = 1 + depth * np.sin(2 * np.pi * vibrato * t + rng.uniform(0, 6.3))
    body = 1 + 0.8 * np.exp(-((n * f0 - 1100) / 500) ** 2)
    return _tone(f0, n, brightness ** n / n * body, length, rng, glide) * _envelope(length, 0.12, 0.15)


def flute(f0, length, rng):
    """A flute: nearly sinusoidal tone, soft vibrato, and band-limited breath noise.

    Chapter: 01_data
    """
    t = np.arange(length) / SR
    glide = 1 + 0.004 * np.sin(2 * np.pi * 5 * t)
    tone = _tone(f0, [1, 2, 3, 4], [1.0, .35, .12, .05], length, rng, glide)
    breath = _bandpass(rng.standard_normal(length).astype(np.float32), f0 * 0.8, f0 * 3)
    return (tone + 0.25 * breath / (np.abs(breath).max() + 1e-6)) * _envelope(length, 0.06, 0.1)


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


def saw_synth(f0, length, rng, *, detune=0.006):
    """A synth: two detuned sawtooths, a bright one fading into a dark one (a closing low-pass).

    Chapter: 01_data
    """
    n = np.arange(1, 40, dtype=np.float64)
    fade = np.exp(-np.arange(length, dtype=np.float32) / SR * 4)
    out = np.zeros(length, np.float32)
    for d in (1 - detune, 1 + detune):
        out += fade * _tone(f0 * d, n, 1 / n, length, rng) + (1 - fade) * _tone(f0 * d, n, 0.6 ** n / n, length, rng)
    return out * _envelope(length, 0.01, 0.05)


def pad(f0, length, rng):
    """A pad: slow-attack detuned saws, darker than the synth (reverb is added at mixing).

    Chapter: 01_data
    """
    n = np.arange(1, 12, dtype=np.float64)
    out = sum(_tone(f0 * d, n, 0.7 ** n / n, length, rng) for d in (0.995, 1.0, 1.005))
    return out * _envelope(length, attack=0.6, release=0.8)


def kick(rng, electronic=False):
    """A kick drum: a sine swept down from 115 Hz (155 Hz if `electronic`, which also rings longer) to 45 Hz.

    Chapter: 01_data
    """
    t = np.arange(int(0.35 * SR)) / SR
    sweep = 45 + (110 if electronic else 70) * np.exp(-t * 30)
    return (np.sin(2 * np.pi * np.cumsum(sweep) / SR) * np.exp(-t * (8 if electronic else 14))).astype(np.float32)


def snare(rng):
    """A snare drum: band-passed noise (the snares) over a 190 Hz tone (the shell), decaying in 0.2 s.

    Chapter: 01_data
    """
    t = np.arange(int(0.2 * SR)) / SR
    noise = _bandpass(rng.standard_normal(len(t)).astype(np.float32), 1500, 5000)
    return ((0.6 * noise / (np.abs(noise).max() + 1e-6) + 0.4 * np.sin(2 * np.pi * 190 * t)) * np.exp(-t * 20)
            ).astype(np.float32)


def hihat(rng, open_=False):
    """A hi-hat: high band-passed noise, short when closed, ringing longer when `open_`.

    Chapter: 01_data
    """
    t = np.arange(int((0.25 if open_ else 0.06) * SR)) / SR
    noise = _bandpass(rng.standard_normal(len(t)).astype(np.float32), 5000, 7900)
    return (noise / (np.abs(noise).max() + 1e-6) * np.exp(-t * (12 if open_ else 60)) * 0.5).astype(np.float32)


def tabla(f0, rng):
    """A tabla stroke: a tuned membrane with nearly harmonic modes and a small downward pitch bend.

    Chapter: 01_data
    """
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
    """Convolution with exponentially decaying noise: `seconds` is the time to fall by 60 dB.

    Chapter: 01_data
    """
    from scipy.signal import fftconvolve

    t = np.arange(int(seconds * SR)) / SR
    ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / seconds)
    ir[0] = 0
    wet = fftconvolve(x, ir.astype(np.float32))[: len(x)]
    return wet / (np.abs(ir).sum() ** 0.5 * 3)

# ------------------------------------------------------------------------ instrument -> note renderer
# One renderer per melodic instrument and voice (the keys of `REGISTER`), called as
# renderer(f0, n, rng, style, vowel): a note of f0 Hz, n samples long, float32. `style` is the song's
# (opera sings with a wider vibrato), `vowel` the part's (a voice or a choir sings one vowel per part).

def _guitar(f0, n, rng, style, vowel):
    return pluck(f0, n, rng, position=0.2, decay=1.6, brightness=0.8)


def _eguitar(f0, n, rng, style, vowel):  # a plucked string through a distortion
    return np.tanh(6 * pluck(f0, n, rng, position=0.15, decay=0.7, brightness=0.85))


def _harp(f0, n, rng, style, vowel):
    return pluck(f0, n, rng, position=0.5, decay=0.7, brightness=0.6)


def _harpsichord(f0, n, rng, style, vowel):
    return pluck(f0, n, rng, position=0.08, decay=2.2, brightness=0.95)


def _piano(f0, n, rng, style, vowel):  # a struck stiff string: stretched partials
    return pluck(f0, n, rng, position=0.12, decay=1.1, brightness=0.7, inharmonic=4e-4)


def _sitar(f0, n, rng, style, vowel):
    return sitar(f0, n, rng)


def _bowed_solo(f0, n, rng, style, vowel):  # violin, cello
    return bowed(f0, n, rng)


def _string_section(f0, n, rng, style, vowel):  # three slightly detuned players
    return sum(bowed(f0 * d, n, rng, depth=0.004) for d in (0.997, 1.0, 1.003)) / 2


def _flute(f0, n, rng, style, vowel):
    return flute(f0, n, rng)


def _female(f0, n, rng, style, vowel):
    return voice(f0, n, rng, vowel=vowel, vibrato=0.025 if style == "opera" else 0.01, formant_shift=1.15)


def _male(f0, n, rng, style, vowel):
    return voice(f0, n, rng, vowel=vowel, vibrato=0.025 if style == "opera" else 0.01, formant_shift=1.0)


def _choir(f0, n, rng, style, vowel):  # four singers, one an octave up, alternating formant shifts
    return sum(voice(f0 * d, n, rng, vowel=vowel, vibrato=0.012, formant_shift=1.0 + 0.15 * (j % 2))
               for j, d in enumerate((0.996, 1.0, 1.004, 2.0)))


def _synth(f0, n, rng, style, vowel):
    return saw_synth(f0, n, rng)


def _pad(f0, n, rng, style, vowel):  # pad and drone
    return pad(f0, n, rng)


#: Melodic instrument (or voice) -> the renderer of one of its notes, renderer(f0, n, rng, style, vowel).
INSTRUMENTS = {
    "guitar": _guitar, "eguitar": _eguitar, "harp": _harp, "harpsichord": _harpsichord, "piano": _piano,
    "sitar": _sitar, "violin": _bowed_solo, "cello": _bowed_solo, "strings": _string_section, "flute": _flute,
    "female": _female, "male": _male, "choir": _choir, "synth": _synth, "pad": _pad, "drone": _pad,
}

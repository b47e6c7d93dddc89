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

The package, one module per job:
- `vocabulary`: the audio format, the styles, the annotator's tags (`ANNOTATOR`, `SYNTH_TAGS`), scales,
  registers and vowels;
- `instruments`: the sound mechanisms, and `INSTRUMENTS`, each melodic instrument's note renderer;
- `songs`: composition: a song's facts (`draw_song`), its tags (`annotate`), one clip (`render_clip`);
- `builder`: the set on disk: `plan`, `write_clip`, `write_synthetic`.
Every name is also here: `from rawtag.data import synth; synth.write_synthetic(...)`.

Chapter: 01_data
"""
from __future__ import annotations

from .builder import CLIP_BYTES, MARKER, ClipPlan, SynthError, plan, render_plan, write_clip, write_synthetic
from .instruments import (
    INSTRUMENTS,
    bowed,
    flute,
    hihat,
    kick,
    pad,
    pluck,
    reverb,
    saw_synth,
    sitar,
    snare,
    tabla,
    voice,
)
from .songs import Song, annotate, draw_song, render_clip
from .vocabulary import (
    ANNOTATOR,
    CLIP_LEN,
    CLIP_SECONDS,
    FOLDER_CYCLE,
    MAX_FREQ,
    MP3_LEVEL,
    REGISTER,
    SCALES,
    SR,
    STYLES,
    SYNTH_TAGS,
    VOWELS,
    midi_hz,
)

__all__ = [
    # vocabulary
    "SR", "CLIP_SECONDS", "CLIP_LEN", "MAX_FREQ", "MP3_LEVEL", "FOLDER_CYCLE", "STYLES", "ANNOTATOR",
    "SYNTH_TAGS", "SCALES", "REGISTER", "VOWELS", "midi_hz",
    # instruments
    "pluck", "sitar", "bowed", "flute", "voice", "saw_synth", "pad", "kick", "snare", "hihat", "tabla",
    "reverb", "INSTRUMENTS",
    # songs
    "Song", "draw_song", "annotate", "render_clip",
    # builder
    "ClipPlan", "plan", "render_plan", "SynthError", "write_clip", "CLIP_BYTES", "MARKER", "write_synthetic",
]

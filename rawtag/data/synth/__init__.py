"""A synthetic, MTAT-shaped tagging set: scored music played on recorded instruments, labelled like MTAT.

Taught in chapter 01 (data). `write_synthetic` writes the SAME on-disk format as MTAT: an
`annotations_final.csv` with MTAT's 188 tag columns, a `clip_info_final.csv`, and 29.1 s mono MP3s at
16 kHz (32 kbit/s) in folders 0-f, so `rawtag prepare` runs on it unchanged.

How it teaches something real:
- the instruments are recordings: each note is a real instrument's recorded note from a General MIDI
  SoundFont (piano, harpsichord, harp, nylon and steel guitars, overdriven and distorted electric guitars,
  violin, cello, string sections, flute, sitar, synth leads and pads, choir, basses, drum kits), placed by
  a sampler; lead voices, which a SoundFont lacks, are formant-filtered vowels with vibrato;
- the music is scored as musicians play a style: a chord progression, a bass line, each instrument in a
  role (held chords, broken chords, strums, power chords, a melody repeating its rhythm), the style's
  drum groove with fills and crashes, four-bar phrases in which parts enter and leave, dynamics, a room,
  compression for loud songs; so timbre, rhythm and texture carry the tags together, as in real music;
- tags co-occur as on MTAT: a song has a style that implies its instruments (classical: strings, piano,
  harpsichord, no drums; techno: synth and beat), and instruments enter and leave across the clip;
- labels are weak: each true fact is annotated with a per-tag probability (synonyms like "female" /
  "woman" / "female vocal" are each used by some annotators only), then every positive is dropped
  with probability `label_drop`;
- style frequencies are long-tailed, and clips of one song share a folder (and so a split).

The package, one module per job:
- `vocabulary`: the audio format, the styles, the annotator's tags (`ANNOTATOR`, `SYNTH_TAGS`), scales,
  registers, vowels, and how each style is played (instruments' programs, progressions, bass, grooves);
- `sampler`: recorded notes from the SoundFont (`note`; another bank with `check_soundfont`), placed on a
  time line (`play`);
- `banks`: the banks known by name (TimGM6mb, shipped with pip; FluidR3_GM, the book's), found or fetched
  (`bank_file`);
- `instruments`: what the SoundFont lacks: the formant `voice`, and `reverb`;
- `songs`: composition: a song's facts (`draw_song`), its tags (`annotate`), its `score`, one clip
  (`render_clip`);
- `builder`: the set on disk: `plan`, `write_clip`, `write_synthetic`.
Every name is also here: `from rawtag.data import synth; synth.write_synthetic(...)`.

Chapter: 01_data
"""
from __future__ import annotations

from .banks import FLUIDR3_GM, BankError, bank_file, find_or_fetch
from .builder import CLIP_BYTES, MARKER, ClipPlan, SynthError, plan, render_plan, write_clip, write_synthetic
from .instruments import reverb, voice
from .sampler import bank_name, check_soundfont, note, notes_folder, play, soundfont
from .songs import Part, Song, annotate, draw_song, render_clip, score
from .vocabulary import (
    ANNOTATOR,
    CLIP_LEN,
    CLIP_SECONDS,
    FOLDER_CYCLE,
    MAX_FREQ,
    MP3_QUALITY,
    PARTS,
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
    "SR", "CLIP_SECONDS", "CLIP_LEN", "MAX_FREQ", "MP3_QUALITY", "FOLDER_CYCLE", "STYLES", "ANNOTATOR",
    "SYNTH_TAGS", "SCALES", "REGISTER", "VOWELS", "PARTS", "midi_hz",
    # sampler and voices
    "soundfont", "check_soundfont", "bank_name", "note", "notes_folder", "play", "voice", "reverb",
    # banks
    "FLUIDR3_GM", "BankError", "bank_file", "find_or_fetch",
    # songs
    "Song", "Part", "draw_song", "annotate", "score", "render_clip",
    # builder
    "ClipPlan", "plan", "render_plan", "SynthError", "write_clip", "CLIP_BYTES", "MARKER", "write_synthetic",
]

"""The synthetic set's vocabulary: its audio format, its styles, the annotator's tags, and the music's tables.

Taught in chapter 01 (data). Everything here is a table: what a style implies (tempo, instruments, voice,
level, reverb), which MTAT tags each fact about a song may receive and how often, the pitch material
(scales, each instrument's register, the vowels' formants), and how a style is played: the General MIDI
instruments that sound each part, its chord progressions, bass lines and drum patterns. The other modules
of `rawtag.data.synth` read them; none of them is changed at run time.

Chapter: 01_data
"""
from __future__ import annotations

import numpy as np

SR = 16_000
CLIP_SECONDS = 29.1
CLIP_LEN = int(round(SR * CLIP_SECONDS))  # 465,600 samples, as an MTAT clip
MAX_FREQ = 5_500.0  # the formant voices' partials above this are not rendered (the prepared set is 12 kHz)
MP3_QUALITY = 7  # LAME's algorithm quality, 0 (best, slowest) to 9: see `builder.encode_mp3`
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


# ------------------------------------------------------------------ how each style is played
#: Each melodic instrument's role in an arrangement and the General MIDI programs that may sound it (one is
#: drawn per song). Roles: `chords` (held chords), `arp` (broken chords), `comp` (chords on the beat),
#: `strum` (a guitar's eighths), `power` (distorted root-fifth chords), `lead` (a melody), `drone`.
PARTS = {
    "piano": ("comp", (0, 1, 2, 3)), "harpsichord": ("arp", (6,)), "harp": ("arp", (46,)),
    "guitar": ("strum", (24, 25, 26)), "eguitar": ("power", (29, 30)), "violin": ("lead", (40,)),
    "cello": ("lead", (42,)), "strings": ("chords", (48, 49, 44)), "flute": ("lead", (73,)),
    "sitar": ("lead", (104,)), "synth": ("lead", (80, 81, 82, 84, 85, 87)),
    "pad": ("chords", (88, 89, 90, 91, 92, 94, 95)), "drone": ("drone", (104,)), "choir": ("chords", (52, 53)),
}
#: A fiddle, not a classical violin, in a country song; odd sounds (General MIDI's effects) in a weird one.
STYLE_PROGRAMS = {("country", "violin"): (110,), ("weird", "synth"): (96, 98, 99, 101, 102, 103),
                  ("techno", "synth"): (80, 81, 84, 87), ("ambient", "synth"): (88, 92, 95),
                  ("pop", "piano"): (0, 1, 4, 5), ("pop", "strings"): (48, 50, 51), ("ambient", "strings"): (49, 50)}
#: Instruments that play broken chords rather than a melody in these styles.
STYLE_ROLES = {("techno", "synth"): "arp", ("classical", "piano"): "arp", ("ambient", "piano"): "arp",
               ("baroque", "cello"): "bass"}
#: Chord progressions as scale degrees (0 = the key's chord), one drawn per song.
PROGRESSIONS = {
    "classical": [(0, 3, 4, 0), (0, 5, 1, 4), (0, 3, 0, 4)], "baroque": [(0, 4, 5, 2, 3, 0, 3, 4), (0, 3, 4, 0)],
    "opera": [(0, 3, 4, 0), (0, 5, 3, 4)], "choral": [(0, 3, 4, 0), (0, 5, 3, 4)],
    "techno": [(0, 0, 5, 6), (0, 5, 6, 4), (0, 0, 0, 0)], "rock": [(0, 3, 4, 3), (0, 6, 5, 6), (0, 4, 5, 3)],
    "metal": [(0, 5, 6, 0), (0, 0, 5, 6), (0, 1, 0, 6)], "pop": [(0, 4, 5, 3), (5, 3, 0, 4), (0, 5, 3, 4)],
    "country": [(0, 3, 0, 4), (0, 0, 3, 4)], "ambient": [(0, 3), (0, 5, 3, 0)], "indian": [(0,)],
    "weird": [(0, 1, 6, 3), (0, 6, 1, 5)],
}
#: The bass line of each style, and the General MIDI bass that plays it (None: no bass part).
BASS = {"rock": ("eighths", (33, 34)), "metal": ("eighths", (33, 34)), "pop": ("pop", (33, 38)),
        "techno": ("offbeat", (38, 39)), "country": ("root-fifth", (32, 33)), "weird": ("pop", (39,)),
        "ambient": ("held", (35,)), "classical": ("held", (43,)), "opera": ("held", (43,)),
        "choral": ("held", (43,)), "baroque": ("walking", (43,)), "indian": (None, ())}
#: Drum kits (bank 128 of the SoundFont): 0 standard, 8 room, 16 power, 24 electronic, 25 TR-808, 40 brush.
KITS = {"rock": (0, 8, 16), "metal": (16, 0), "pop": (0, 24), "techno": (25, 24), "country": (40, 0),
        "weird": (24, 25, 0)}
KICK, SNARE, CLAP, HAT, OPEN_HAT, CRASH, RIDE, TOMS = 36, 38, 39, 42, 46, 49, 51, (45, 47, 48, 50)
#: One bar of each style's groove on 16 steps: drum -> steps where it plays.
GROOVES = {
    "rock": [{KICK: (0, 8), SNARE: (4, 12), HAT: (0, 2, 4, 6, 8, 10, 12, 14)},
             {KICK: (0, 8, 10), SNARE: (4, 12), HAT: (0, 2, 4, 6, 8, 10, 12, 14)}],
    "metal": [{KICK: tuple(range(16)), SNARE: (4, 12), RIDE: (0, 2, 4, 6, 8, 10, 12, 14)},
              {KICK: tuple(range(0, 16, 2)), SNARE: (4, 12), CRASH: (0, 8)}],
    "pop": [{KICK: (0, 6, 8), SNARE: (4, 12), HAT: (0, 2, 4, 6, 8, 10, 12, 14)},
            {KICK: (0, 8, 11), CLAP: (4, 12), HAT: (0, 2, 4, 6, 8, 10, 12, 14)}],
    "techno": [{KICK: (0, 4, 8, 12), CLAP: (4, 12), OPEN_HAT: (2, 6, 10, 14), HAT: tuple(range(16))},
               {KICK: (0, 4, 8, 12), OPEN_HAT: (2, 6, 10, 14), HAT: (1, 3, 5, 7, 9, 11, 13, 15)}],
    "country": [{KICK: (0, 8), SNARE: (4, 12), HAT: (0, 2, 4, 6, 8, 10, 12, 14)},
                {KICK: (0, 6, 8), SNARE: (2, 6, 10, 14), HAT: (0, 4, 8, 12)}],
    "weird": [{KICK: (0, 3, 10), SNARE: (7, 13), TOMS[1]: (5, 14), HAT: (2, 9)},
              {KICK: (0, 5, 11), CLAP: (8,), TOMS[3]: (3, 13)}],
}
#: Tabla-like strokes from the standard kit (high / low bongo, muted / open high conga, low conga) and a
#: 16-step cycle (teental-like: 4 groups of 4) of them; -1 is a rest.
TABLA_KEYS = (60, 61, 62, 63, 64)
TABLA_CYCLES = [(4, 0, 0, 4, 4, 0, 0, 4, 4, 0, 0, 4, 3, 0, 1, 2), (4, 2, 0, 1, 4, 2, 0, 1, 3, 2, 0, 1, 4, 2, 1, 0)]
#: Rhythm cells of a melody: one bar's note lengths in beats, one drawn per part and repeated as a motif.
RHYTHMS = [(1, 1, 1, 1), (2, 1, 1), (1.5, 0.5, 2), (0.5, 0.5, 1, 2), (3, 1), (1, 0.5, 0.5, 1, 1), (2, 2), (4,)]


def midi_hz(m):
    """The frequency in Hz of MIDI note(s) `m` (A4 = 69 = 440 Hz, 12 equal steps per octave).

    Chapter: 01_data
    """
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=np.float64) - 69) / 12)

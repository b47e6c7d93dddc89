"""MagnaTagATune (MTAT) as it is on disk: the file names, the annotations, top-K tags and splits.

Taught in chapter 01 (data). The facts here (broken clips, synonym groups, split rules, the 188 tag
columns) are the published ones; `tests/test_mtat.py` checks them against the real annotation file where
it is present. Fetching the files (URLs, checksums, extraction) is `rawtag.data.download`.

Chapter: 01_data
"""
from __future__ import annotations

import csv
import io
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ANNOTATIONS = "annotations_final.csv"
CLIP_INFO = "clip_info_final.csv"

#: The three clips of MTAT that cannot be used, all in training folders, with the reason.
BROKEN_CLIPS = {
    "6/norine_braun-now_and_zen-08-gently-117-146.mp3": "missing / empty file (clip_id 35644)",
    "8/jacob_heringman-josquin_des_prez_lute_settings-19-gintzler__pater_noster-204-233.mp3":
        "corrupt MP3 (clip_id 55753)",
    "9/american_baroque-dances_and_suites_of_rameau_and_couperin-25-le_petit_rien_xiveme_ordre_"
    "couperin-88-117.mp3": "corrupt MP3 (clip_id 57881)",
}

#: Folder-based split: MTAT's 16 folders 0-f, by the first character of mp3_path.
SPLIT_FOLDERS = {"train": "0123456789ab", "valid": "c", "test": "def"}
#: The paper's split: it trains on folders 0-c, validates on d-f and has no test split.
PAPER_SPLIT_FOLDERS = {"train": "0123456789abc", "valid": "def", "test": ""}
SCHEMES = ("folder", "won", "paper")
# Published split sizes (train, valid, test), quoted for chapter 01's comparison with our own counts.
LITERATURE_SPLITS = {
    "folder, all clips (0-b / c / d-f)": (18_709, 1_825, 5_329),
    "folder, top-50 (clips with a top-50 tag)": (15_250, 1_529, 4_332),
    "Won et al. 2020 (top-50 minus 3 broken clips)": (15_247, 1_529, 4_332),
    "Lee et al. 2017 (published lists)": (15_244, 1_529, 4_332),
    "this paper (as reported; merged top-50, 0-c / d-f, no test)": (16_963, 4_392, None),
}

#: The two validation clips the paper names in section VIII (it names its own `.npy` files; these are the
#: MP3s they were decoded from): the lowest binary cross-entropy (0.0582) and the highest (0.7612).
PAPER_NAMED_CLIPS = {
    "best": "f/various_artists-south_by_southwest_compilation-03-completely_mysticism_dr_kuch-0-29.mp3",
    "worst": "f/lizzi-love_and_you_and_i-02-love_and_you_and_i-233-262.mp3",
}

#: Synonymous tags, merged tag -> its annotation columns: the 29 groups of keunwoochoi/magnatagatune-list,
#: the grouping the paper's split uses (scheme `paper`). Columns in no group keep their own name.
SYNONYMS = {
    "beat": ("beat", "beats"),
    "chant": ("chant", "chanting"),
    "choir": ("choir", "choral"),
    "classical": ("classical", "clasical", "classic"),
    "drum": ("drum", "drums"),
    "electro": ("electro", "electronic", "electronica", "electric"),
    "fast": ("fast", "fast beat", "quick"),
    "female": ("female", "female singer", "female singing", "female vocals", "female vocal", "female voice",
               "woman", "woman singing", "women"),
    "flute": ("flute", "flutes"),
    "guitar": ("guitar", "guitars"),
    "hard": ("hard", "hard rock"),
    "harpsichord": ("harpsichord", "harpsicord"),
    "heavy": ("heavy", "heavy metal", "metal"),
    "horn": ("horn", "horns"),
    "india": ("india", "indian"),
    "jazz": ("jazz", "jazzy"),
    "male": ("male", "male singer", "male vocal", "male vocals", "male voice", "man", "man singing", "men"),
    "no beat": ("no beat", "no drums"),
    "no singer": ("no singer", "no singing", "no vocal", "no vocals", "no voice", "no voices",
                  "instrumental"),
    "opera": ("opera", "operatic"),
    "orchestra": ("orchestra", "orchestral"),
    "quiet": ("quiet", "silence"),
    "singer": ("singer", "singing"),
    "space": ("space", "spacey"),
    "string": ("string", "strings"),
    "synth": ("synth", "synthesizer"),
    "violin": ("violin", "violins"),
    "vocal": ("vocal", "vocals", "voice", "voices"),
    "strange": ("strange", "weird"),
}

#: MTAT's 188 tag columns, in the order of `annotations_final.csv` (the synthetic set writes the same).
MTAT_TAGS = (
    'no voice', 'singer', 'duet', 'plucking', 'hard rock', 'world', 'bongos', 'harpsichord',
    'female singing', 'clasical', 'sitar', 'chorus', 'female opera', 'male vocal', 'vocals', 'clarinet',
    'heavy', 'silence', 'beats', 'men', 'woodwind', 'funky', 'no strings', 'chimes', 'foreign',
    'no piano', 'horns', 'classical', 'female', 'no voices', 'soft rock', 'eerie', 'spacey', 'jazz',
    'guitar', 'quiet', 'no beat', 'banjo', 'electric', 'solo', 'violins', 'folk', 'female voice',
    'wind', 'happy', 'ambient', 'new age', 'synth', 'funk', 'no singing', 'middle eastern', 'trumpet',
    'percussion', 'drum', 'airy', 'voice', 'repetitive', 'birds', 'space', 'strings', 'bass',
    'harpsicord', 'medieval', 'male voice', 'girl', 'keyboard', 'acoustic', 'loud', 'classic', 'string',
    'drums', 'electronic', 'not classical', 'chanting', 'no violin', 'not rock', 'no guitar', 'organ',
    'no vocal', 'talking', 'choral', 'weird', 'opera', 'soprano', 'fast', 'acoustic guitar',
    'electric guitar', 'male singer', 'man singing', 'classical guitar', 'country', 'violin', 'electro',
    'reggae', 'tribal', 'dark', 'male opera', 'no vocals', 'irish', 'electronica', 'horn', 'operatic',
    'arabic', 'lol', 'low', 'instrumental', 'trance', 'chant', 'strange', 'drone', 'synthesizer',
    'heavy metal', 'modern', 'disco', 'bells', 'man', 'deep', 'fast beat', 'industrial', 'hard', 'harp',
    'no flute', 'jungle', 'pop', 'lute', 'female vocal', 'oboe', 'mellow', 'orchestral', 'viola',
    'light', 'echo', 'piano', 'celtic', 'male vocals', 'orchestra', 'eastern', 'old', 'flutes', 'punk',
    'spanish', 'sad', 'sax', 'slow', 'male', 'blues', 'vocal', 'indian', 'no singer', 'scary', 'india',
    'woman', 'woman singing', 'rock', 'dance', 'piano solo', 'guitars', 'no drums', 'jazzy', 'singing',
    'cello', 'calm', 'female vocals', 'voices', 'different', 'techno', 'clapping', 'house', 'monks',
    'flute', 'not opera', 'not english', 'oriental', 'beat', 'upbeat', 'soft', 'noise', 'choir',
    'female singer', 'rap', 'metal', 'hip hop', 'quick', 'water', 'baroque', 'women', 'fiddle',
    'english',
)


class MTATError(RuntimeError):
    """A problem with MTAT files that the user can fix; the message says how.

    Chapter: 01_data
    """


@dataclass
class Annotations:
    """The annotation matrix: one row per clip, one column per tag (0/1).

    Chapter: 01_data
    """

    clip_ids: list[int]
    tags: list[str]
    matrix: np.ndarray  # uint8 [clips, tags]
    mp3_paths: list[str]


def read_annotations(path: str | os.PathLike) -> Annotations:
    """Read `annotations_final.csv` as it really is: tab-separated, every field quoted, CRLF ends.

    The header is `clip_id`, the tag columns, then `mp3_path`. A UTF-8 byte-order mark and blank lines
    are ignored. Anything else that is not MTAT's format is refused with the file, line and column:
    labels other than 0 or 1, clip ids that are not integers, a tag column, clip id or path listed twice
    (paths compared as normalized: `0/./a.mp3` is `0/a.mp3`, and is stored so), paths that are absolute or
    climb out of the folder with `..`, text that is not UTF-8 (UTF-16 is named as such).

    Chapter: 01_data
    """
    path = Path(path)
    if not path.is_file():
        raise MTATError(f"{path}: no such annotation file (run `rawtag download` or `rawtag synth` first)")
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw[:4096]:
        raise MTATError(f"{path}: UTF-16 text (or binary data), not UTF-8; save the file as UTF-8 (e.g. "
                        f"`iconv -f utf-16 -t utf-8`)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise MTATError(f"{path}, line {line}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save the file as "
                        f"UTF-8 (e.g. `iconv -f latin1 -t utf-8`)") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quotechar='"')
    rows = [(reader.line_num, r) for r in reader if any(field.strip() for field in r)]
    if not rows:
        raise MTATError(f"{path}: empty annotation file (no header, no clips)")
    first, header = rows[0]
    if header[0] == "clip_id" and header[-1] == "mp3_path" and "track_number" in header:
        raise MTATError(f"{path} is MTAT's clip information file ({CLIP_INFO}), not the annotations: "
                        f"pass {ANNOTATIONS} instead")
    if header[0] != "clip_id" or header[-1] != "mp3_path" or len(header) < 3:
        raise MTATError(f"{path}, line {first}: not an MTAT annotation file (the header must be tab-separated, "
                        f"start with clip_id and end with mp3_path; it starts {header[0][:40]!r})")
    tags, body = header[1:-1], rows[1:]
    twice = next((j for j, t in enumerate(tags) if t in tags[:j]), None)
    if twice is not None:  # the second column's labels would be read as the first's
        raise MTATError(f"{path}, line {first}: the tag column {tags[twice]!r} appears twice (columns "
                        f"{tags.index(tags[twice]) + 2} and {twice + 2}); give each tag one column: merge or "
                        f"rename them")
    bad = [line for line, r in body if len(r) != len(header)]
    if bad:
        raise MTATError(f"{path}: line(s) {bad[:5]} have the wrong number of fields (expected {len(header)}, "
                        f"tab-separated)")
    labels, seen_id, seen_path, ok = [], {}, {}, {"0", "1"}
    for line, r in body:
        where = f"{path}, line {line}"
        try:
            clip_id = int(r[0])
        except ValueError:
            raise MTATError(f"{where}, column 1 (clip_id): expected an integer, got {r[0][:40]!r}") from None
        values = r[1:-1]
        if not ok.issuperset(values):
            j = next(j for j, v in enumerate(values) if v not in ok)
            raise MTATError(f"{where}, column {j + 2} ({tags[j]!r}): expected 0 or 1, got {values[j][:40]!r}")
        p = r[-1]
        parts = p.replace("\\", "/").split("/")
        if not p or p.startswith(("/", "\\")) or (len(p) > 1 and p[1] == ":") or ".." in parts:
            raise MTATError(f"{where}, column {len(header)} (mp3_path): {p!r} is not a path inside the audio "
                            f"folder (it must be relative, like 'f/artist-title-0-29.mp3', without '..')")
        p = r[-1] = posixpath.normpath(p)  # "0/./a.mp3" and "0//a.mp3" are "0/a.mp3"
        for seen, key, name in ((seen_id, clip_id, "clip_id"), (seen_path, p, "mp3_path")):
            if key in seen:
                other, before = seen[key]
                same = "the same labels" if before == values else "different labels"
                raise MTATError(f"{where}: {name} {key!r} is already on line {other} (with {same}); "
                                f"each clip must be listed once: remove one of the rows")
            seen[key] = (line, values)
        labels.append(values)
    matrix = (np.array(labels, dtype="U1") == "1").astype(np.uint8).reshape(len(body), len(tags))
    return Annotations([int(r[0]) for _, r in body], tags, matrix, [r[-1] for _, r in body])


def top_tags(ann: Annotations, k: int = 50) -> list[str]:
    """The K most frequent tags, most frequent first.

    Tie rule: tags with equal counts keep their column order in the annotation file (a stable sort).
    On MTAT this reproduces the published top-50 order ("no vocal" before "pop" at 995 clips,
    "female voice" before "metal" at 505). Tags that no clip has are never chosen, so a small set
    (a few synthetic clips) can give fewer than K tags.

    Chapter: 01_data
    """
    if not 1 <= k <= len(ann.tags):
        raise MTATError(f"top-k must be between 1 and {len(ann.tags)}, got {k}")
    counts = ann.matrix.sum(axis=0, dtype=np.int64)
    order = np.argsort(-counts, kind="stable")
    return [ann.tags[i] for i in order if counts[i] > 0][:k]


def merge_synonyms(ann: Annotations, groups: dict = SYNONYMS) -> Annotations:
    """The annotations with each group of synonymous columns merged into one tag.

    A merged tag is positive for a clip when any of its columns is; a column in no group stays as it is.
    Each merged tag takes the place of its group's first column in the file, so `top_tags`'s tie rule
    (column order) applies to merged tags too. Columns a group names that the file lacks are ignored.

    Chapter: 01_data
    """
    group_of = {column: tag for tag, columns in groups.items() for column in columns}
    members: dict[str, list[int]] = {}  # merged tag -> its column indices, in order of first column
    for j, column in enumerate(ann.tags):
        members.setdefault(group_of.get(column, column), []).append(j)
    matrix = np.stack([ann.matrix[:, cols].max(axis=1) for cols in members.values()], axis=1)
    return Annotations(ann.clip_ids, list(members), matrix, ann.mp3_paths)


def scheme_annotations(ann: Annotations, scheme: str) -> Annotations:
    """The annotations whose columns a scheme's tags name: synonym-merged for `paper`, else as read.

    Chapter: 01_data
    """
    if scheme not in SCHEMES:
        raise MTATError(f"unknown split scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    return merge_synonyms(ann) if scheme == "paper" else ann


def splits(ann: Annotations, scheme: str = "folder", k: int = 50) -> dict:
    """Split the clips as the literature does; returns {"tags", "train", "valid", "test"}.

    - `folder`: folders 0-b train, c valid, d-f test, keeping clips with at least one top-K tag
      (15,250 / 1,529 / 4,332 on MTAT with K = 50);
    - `won`: the same without the three broken clips (15,247 / 1,529 / 4,332; Won et al. 2020);
    - `paper`: the paper's own split: tags merged with `SYNONYMS`, the top-K merged tags, folders 0-c
      train and d-f valid, no test, without the three broken clips (16,963 / 4,392 / 0 with K = 50,
      exactly the paper's counts). Its tags are merged names: label them with `label_matrix(..., scheme)`.

    Chapter: 01_data
    """
    ann = scheme_annotations(ann, scheme)
    tags = top_tags(ann, k)
    if not tags:
        raise MTATError(f"no clip has any tag: every label of the {len(ann.mp3_paths)} clips is 0; check the "
                        f"annotation file (its tag columns must hold 1 where a clip has the tag)")
    cols = [ann.tags.index(t) for t in tags]
    has_tag = ann.matrix[:, cols].any(axis=1)
    out = {"tags": tags, "train": [], "valid": [], "test": []}
    folders = PAPER_SPLIT_FOLDERS if scheme == "paper" else SPLIT_FOLDERS
    folder_split = {c: s for s, chars in folders.items() for c in chars}
    for path, keep in zip(ann.mp3_paths, has_tag, strict=True):
        split = folder_split.get(folder_of(path))
        if not keep or split is None:
            continue
        if scheme != "folder" and path in BROKEN_CLIPS:
            continue
        out[split].append(path)
    return out


def folder_of(path: str) -> str | None:
    """MTAT's folder of an `mp3_path`, one of 0-f ("f/artist-...mp3" -> "f"), or None for a path in no folder.

    Chapter: 01_data
    """
    return path[0] if len(path) > 2 and path[1] == "/" and path[0] in "0123456789abcdef" else None


def outside_folders(ann: Annotations) -> list[str]:
    """The clips whose path is in none of MTAT's folders 0-f: no split takes them (listed, not dropped
    silently, by `rawtag splits` and in a prepared set's manifest).

    Chapter: 01_data
    """
    return [p for p in ann.mp3_paths if folder_of(p) is None]


def label_matrix(ann: Annotations, tags: list[str], paths: list[str], scheme: str = "folder") -> np.ndarray:
    """Labels [len(paths), len(tags)] as uint8, rows in the order of `paths`; `tags` as `splits(ann, scheme)`
    names them (merged tags for `paper`).

    Chapter: 01_data
    """
    ann = scheme_annotations(ann, scheme)
    row = {p: i for i, p in enumerate(ann.mp3_paths)}
    cols = [ann.tags.index(t) for t in tags]
    return ann.matrix[np.array([row[p] for p in paths], dtype=np.int64)][:, cols]

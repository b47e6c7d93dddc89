"""MagnaTagATune (MTAT) as it is on disk: the official files, the annotations, top-K tags and splits.

Taught in chapter 01 (data). The facts here (URLs, checksums, broken clips, synonym groups, split rules)
are the published ones; `tests/test_mtat.py` checks them against the real annotation file where it is
present.
"""
from __future__ import annotations

import csv
import hashlib
import http.client
import io
import json
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import write_text

BASE_URL = "http://mi.soi.city.ac.uk/datasets/magnatagatune/"

#: Every file of the official download, with its sha256.
MTAT_FILES = {
    "mp3.zip.001": "f857fe185968773058cc71662c2ef5d8f2d4b7338e3c122cfd52f82dcb9760b9",
    "mp3.zip.002": "fc2e1ec441755556ed1398b1808f1b08b6034372f8bc27394510c0c58cdb52ce",
    "mp3.zip.003": "83a689824c17e82f6eb81cdbc4e4ca239a4cfc1fb41f1a5c80b861caec90450f",
    "annotations_final.csv": "99b94e95825d4fa576386a5367b9c96e0ec636e9f9c240aceb492f4728f68c3c",
    "clip_info_final.csv": "cb6108a10d3a91f0bfd7d2fbec2382559d15f20c8d28093f14e12162a47a3e78",
}
ANNOTATIONS = "annotations_final.csv"
CLIP_INFO = "clip_info_final.csv"
AUDIO_PARTS = ("mp3.zip.001", "mp3.zip.002", "mp3.zip.003")

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
    """A problem with MTAT files that the user can fix; the message says how."""


@dataclass
class Annotations:
    """The annotation matrix: one row per clip, one column per tag (0/1)."""

    clip_ids: list[int]
    tags: list[str]
    matrix: np.ndarray  # uint8 [clips, tags]
    mp3_paths: list[str]


def read_annotations(path: str | os.PathLike) -> Annotations:
    """Read `annotations_final.csv` as it really is: tab-separated, every field quoted, CRLF ends.

    The header is `clip_id`, the tag columns, then `mp3_path`. A UTF-8 byte-order mark and blank lines
    are ignored. Anything else that is not MTAT's format is refused with the file, line and column:
    labels other than 0 or 1, clip ids that are not integers, a clip id or path listed twice, paths that
    are absolute or climb out of the folder with `..`, text that is not UTF-8. Chapter 01.
    """
    path = Path(path)
    if not path.is_file():
        raise MTATError(f"{path}: no such annotation file (run `rawtag download` or `rawtag synth` first)")
    raw = path.read_bytes()
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
    (a few synthetic clips) can give fewer than K tags. Chapter 01.
    """
    if not 1 <= k <= len(ann.tags):
        raise MTATError(f"top-k must be between 1 and {len(ann.tags)}, got {k}")
    counts = ann.matrix.sum(axis=0, dtype=np.int64)
    order = np.argsort(-counts, kind="stable")
    return [ann.tags[i] for i in order if counts[i] > 0][:k]


def merge_synonyms(ann: Annotations, groups: dict = SYNONYMS) -> Annotations:
    """The annotations with each group of synonymous columns merged into one tag. Chapter 01.

    A merged tag is positive for a clip when any of its columns is; a column in no group stays as it is.
    Each merged tag takes the place of its group's first column in the file, so `top_tags`'s tie rule
    (column order) applies to merged tags too. Columns a group names that the file lacks are ignored.
    """
    group_of = {column: tag for tag, columns in groups.items() for column in columns}
    members: dict[str, list[int]] = {}  # merged tag -> its column indices, in order of first column
    for j, column in enumerate(ann.tags):
        members.setdefault(group_of.get(column, column), []).append(j)
    matrix = np.stack([ann.matrix[:, cols].max(axis=1) for cols in members.values()], axis=1)
    return Annotations(ann.clip_ids, list(members), matrix, ann.mp3_paths)


def scheme_annotations(ann: Annotations, scheme: str) -> Annotations:
    """The annotations whose columns a scheme's tags name: synonym-merged for `paper`, else as read."""
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
    Chapter 01.
    """
    ann = scheme_annotations(ann, scheme)
    tags = top_tags(ann, k)
    cols = [ann.tags.index(t) for t in tags]
    has_tag = ann.matrix[:, cols].any(axis=1)
    out = {"tags": tags, "train": [], "valid": [], "test": []}
    folders = PAPER_SPLIT_FOLDERS if scheme == "paper" else SPLIT_FOLDERS
    folder_split = {c: s for s, chars in folders.items() for c in chars}
    for path, keep in zip(ann.mp3_paths, has_tag):
        split = folder_split.get(folder_of(path))
        if not keep or split is None:
            continue
        if scheme != "folder" and path in BROKEN_CLIPS:
            continue
        out[split].append(path)
    return out


def folder_of(path: str) -> str | None:
    """MTAT's folder of an `mp3_path`, one of 0-f ("f/artist-...mp3" -> "f"), or None for a path in no folder."""
    return path[0] if len(path) > 2 and path[1] == "/" and path[0] in "0123456789abcdef" else None


def outside_folders(ann: Annotations) -> list[str]:
    """The clips whose path is in none of MTAT's folders 0-f: no split takes them (listed, not dropped
    silently, by `rawtag splits` and in a prepared set's manifest)."""
    return [p for p in ann.mp3_paths if folder_of(p) is None]


def label_matrix(ann: Annotations, tags: list[str], paths: list[str], scheme: str = "folder") -> np.ndarray:
    """Labels [len(paths), len(tags)] as uint8, rows in the order of `paths`; `tags` as `splits(ann, scheme)`
    names them (merged tags for `paper`). Chapter 01."""
    ann = scheme_annotations(ann, scheme)
    row = {p: i for i, p in enumerate(ann.mp3_paths)}
    cols = [ann.tags.index(t) for t in tags]
    return ann.matrix[np.array([row[p] for p in paths], dtype=np.int64)][:, cols]


# --------------------------------------------------------------------------------------- download

def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _fetch(url: str, dest: Path, expected_sha256: str, progress: bool) -> None:
    """Download `url` to `dest`, resuming `dest.part` with an HTTP Range request, then verify it."""
    from ..progress import tqdm

    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to fetch: the part is already whole
            response = None
        else:
            raise MTATError(f"{url}: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        raise MTATError(f"cannot reach {url} ({getattr(e, 'reason', e)}): check the network, "
                        f"or put the file in {dest.parent} by hand and rerun") from e
    if response is not None:
        with response:
            resumed = response.status == 206
            if have and not resumed:  # the server ignored Range: start again
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length else None
            with open(part, "ab" if resumed else "wb") as out, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=dest.name,
                disable=not progress, leave=False,
            ) as bar:
                problem = None
                try:
                    while block := response.read(1 << 20):
                        out.write(block)
                        bar.update(len(block))
                except (http.client.IncompleteRead, OSError) as e:
                    problem = e
                if problem is not None or (total is not None and out.tell() < total):
                    raise MTATError(f"{dest.name}: download interrupted after {out.tell():,} of {total or '?'} "
                                    f"bytes ({problem or 'connection closed'}); rerun `rawtag download` to "
                                    f"resume it")
    actual = sha256_of(part)
    if actual != expected_sha256:
        bad = dest.with_name(dest.name + ".bad")
        part.replace(bad)
        raise MTATError(f"{dest.name}: checksum mismatch (sha256 {actual}, expected {expected_sha256}); "
                        f"the download was moved to {bad.name}; rerun `rawtag download` to fetch it again")
    part.replace(dest)


class _JoinedParts(io.RawIOBase):
    """The split zip's parts read as one seekable file, so that nothing 3 GB is written twice."""

    def __init__(self, paths: list[Path]):
        self._files = [open(p, "rb") for p in paths]
        self._sizes = [p.stat().st_size for p in paths]
        self._starts = np.cumsum([0] + self._sizes[:-1]).tolist()
        self._size = sum(self._sizes)
        self._pos = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer):
        view, done = memoryview(buffer).cast("B"), 0
        while done < len(view) and self._pos < self._size:
            i = int(np.searchsorted(self._starts, self._pos, side="right")) - 1
            f = self._files[i]
            f.seek(self._pos - self._starts[i])
            n = f.readinto(view[done:done + min(len(view) - done, self._sizes[i] - (self._pos - self._starts[i]))])
            done += n
            self._pos += n
        return done

    def close(self):
        for f in self._files:
            f.close()
        super().close()


def _safe_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The archive's members, refusing absolute paths and `..` (a zip must not write outside its folder)."""
    for info in archive.infolist():
        name = info.filename
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in Path(name).parts:
            raise MTATError(f"refusing to extract {name!r}: absolute paths and '..' are not allowed in the archive")
    return archive.infolist()


def extract_parts(parts: list[Path], root: Path, progress: bool = True) -> None:
    """Extract the joined zip parts into `root` (folders 0-f), through a staging folder.

    Members land in `root/.extracting/` and are moved into place only when all are written, so a killed
    extraction never leaves a folder that looks complete; rerunning starts the staging over.
    """
    from ..progress import tqdm

    staging = root / ".extracting"
    shutil.rmtree(staging, ignore_errors=True)
    with _JoinedParts(parts) as joined, zipfile.ZipFile(io.BufferedReader(joined, 1 << 20)) as archive:
        members = _safe_members(archive)
        for info in tqdm(members, desc="extract", unit="file", disable=not progress, leave=False):
            archive.extract(info, staging)
    for entry in sorted(staging.iterdir()):
        target = root / entry.name
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        entry.replace(target)
    staging.rmdir()


def download(root: str | os.PathLike, base_url: str = BASE_URL, files: dict | None = None,
             progress: bool = True) -> Path:
    """Fetch MTAT into `root`: audio folders 0-f, annotations and clip info. Chapter 01.

    Resumable (each file is fetched into `NAME.part` with HTTP Range), verified (sha256 against the
    published checksums), idempotent (a verified file is recorded in `download.json` and not fetched
    again; a finished extraction is recorded too). Needs about 6 GB free while the zip parts are kept.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    files = dict(MTAT_FILES if files is None else files)
    state_path = root / "download.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}

    for name, digest in files.items():
        dest = root / name
        record = state.get(name, {})
        if dest.exists() and record.get("sha256") == digest and record.get("bytes") == dest.stat().st_size:
            continue
        if dest.exists() and sha256_of(dest) == digest:
            pass  # put there by hand or by an earlier run that died before recording it
        else:
            _fetch(base_url.rstrip("/") + "/" + name, dest, digest, progress)
        state[name] = {"sha256": digest, "bytes": dest.stat().st_size}
        if name in AUDIO_PARTS:  # a new audio part means the extraction must be done again
            state.pop("extracted", None)
        write_text(state_path, json.dumps(state, indent=1, sort_keys=True))
    parts = [root / p for p in AUDIO_PARTS if p in files]
    if parts and not state.get("extracted"):
        extract_parts(parts, root, progress)
        state["extracted"] = True
        write_text(state_path, json.dumps(state, indent=1, sort_keys=True))
    return root

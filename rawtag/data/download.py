"""Downloading MagnaTagATune: fetch the official files, verify their checksums, extract the audio.

Taught in chapter 01 (data). `download` fetches every file of the official download into a folder,
resuming a cut connection with HTTP Range, checks each against its published sha256, and extracts the
split zip's audio into folders 0-f. The format of what it fetches (annotations, splits, tags) is
`rawtag.data.mtat`.

Chapter: 01_data
"""
from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from ..atomic import write_text
from .mtat import MTATError

BASE_URL = "http://mi.soi.city.ac.uk/datasets/magnatagatune/"

#: Every file of the official download, with its sha256.
MTAT_FILES = {
    "mp3.zip.001": "f857fe185968773058cc71662c2ef5d8f2d4b7338e3c122cfd52f82dcb9760b9",
    "mp3.zip.002": "fc2e1ec441755556ed1398b1808f1b08b6034372f8bc27394510c0c58cdb52ce",
    "mp3.zip.003": "83a689824c17e82f6eb81cdbc4e4ca239a4cfc1fb41f1a5c80b861caec90450f",
    "annotations_final.csv": "99b94e95825d4fa576386a5367b9c96e0ec636e9f9c240aceb492f4728f68c3c",
    "clip_info_final.csv": "cb6108a10d3a91f0bfd7d2fbec2382559d15f20c8d28093f14e12162a47a3e78",
}
AUDIO_PARTS = ("mp3.zip.001", "mp3.zip.002", "mp3.zip.003")


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The sha256 of a file, as hex, read in chunks of `chunk` bytes (a 1 GB zip part never sits in memory).

    Chapter: 01_data
    """
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

    Chapter: 01_data
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
    """Fetch MTAT into `root`: audio folders 0-f, annotations and clip info.

    Resumable (each file is fetched into `NAME.part` with HTTP Range), verified (sha256 against the
    published checksums), idempotent (a verified file is recorded in `download.json` and not fetched
    again; a finished extraction is recorded too). Needs about 6 GB free while the zip parts are kept.

    Chapter: 01_data
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

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
import zlib
from pathlib import Path

import numpy as np

from ..atomic import read_json, write_text
from .mtat import MTATError

#: The official folder: its current address first, then the old one (the site moved to mirg.city.ac.uk).
BASE_URLS = ("https://mirg.city.ac.uk/datasets/magnatagatune/", "http://mi.soi.city.ac.uk/datasets/magnatagatune/")
BASE_URL = BASE_URLS[0]

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


class _Unreachable(MTATError):
    """The host did not answer with the file (no network, no such host, an HTTP error): try the next one."""


def _fetch(url: str, dest: Path, expected_sha256: str, progress: bool, rerun: str = "rawtag download") -> None:
    """Download `url` to `dest`, resuming `dest.part` with an HTTP Range request, then verify it; `rerun` is
    the command an error tells the reader to run again."""
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
            raise _Unreachable(f"{url}: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        raise _Unreachable(f"cannot reach {url} ({getattr(e, 'reason', e)}): check the network, "
                        f"or put the file in {dest.parent} by hand and rerun") from e
    if response is not None:
        with response:
            resumed = response.status == 206
            if have and not resumed:  # the server ignored Range: start again
                have = 0
            start = _range_start(response.headers.get("Content-Range", ""))
            if resumed and start != have:
                part.unlink()
                raise MTATError(f"{dest.name}: asked {url} for the bytes from {have:,} on, but it answered from "
                                f"byte {start}; the partial download was discarded: rerun `{rerun}` to "
                                f"fetch it from the start")
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
                                    f"bytes ({problem or 'connection closed'}); rerun `{rerun}` to "
                                    f"resume it")
    actual = sha256_of(part)
    if actual != expected_sha256:
        bad = dest.with_name(dest.name + ".bad")
        part.replace(bad)
        raise MTATError(f"{dest.name}: checksum mismatch (sha256 {actual}, expected {expected_sha256}); "
                        f"the download was moved to {bad.name}; rerun `{rerun}` to fetch it again")
    part.replace(dest)


def _range_start(content_range: str) -> int | None:
    """The first byte of a 206 reply's `Content-Range: bytes START-END/TOTAL`; None if it has none."""
    try:
        return int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _fetch_first(urls: tuple[str, ...], name: str, dest: Path, expected_sha256: str, progress: bool,
                 rerun: str = "rawtag download") -> None:
    """Fetch `name` from the first of `urls` that serves it (the official host's addresses, or a mirror)."""
    reasons = []
    for base in urls:
        try:
            return _fetch(base.rstrip("/") + "/" + name, dest, expected_sha256, progress, rerun)
        except _Unreachable as e:
            reasons.append(str(e))
    raise MTATError("; ".join(reasons))


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


class _BadArchive(MTATError):
    """Zip parts whose checksums match but that do not extract."""


def extract_parts(parts: list[Path], root: Path, progress: bool = True) -> dict[str, int]:
    """Extract the joined zip parts into `root` (folders 0-f), through a staging folder; returns the files
    written, path -> size in bytes.

    Members land in `root/.extracting/` and are moved into place one file at a time only when all are
    written, so a killed extraction never leaves a folder that looks complete; rerunning starts the staging
    over. Only the archive's own files are replaced: anything else in folders 0-f stays. A damaged archive
    is one MTATError naming the parts.

    Chapter: 01_data
    """
    from ..progress import tqdm

    staging = root / ".extracting"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with _JoinedParts(parts) as joined, zipfile.ZipFile(io.BufferedReader(joined, 1 << 20)) as archive:
            members = _safe_members(archive)
            for info in tqdm(members, desc="extract", unit="file", disable=not progress, leave=False):
                archive.extract(info, staging)
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise _BadArchive(f"the parts {', '.join(p.name for p in parts)} do not form a readable zip "
                          f"({' '.join(str(e).split()) or type(e).__name__})") from e
    written = {info.filename: info.file_size for info in members if not info.is_dir()}
    for name in written:
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / name, target)
    shutil.rmtree(staging)
    return written


def _extracted(root: Path, record) -> bool:
    """True when every file of a recorded extraction (path -> size) is in `root` with its size."""
    if not isinstance(record, dict) or not record:
        return False
    for name, size in record.items():
        try:
            if os.path.getsize(root / name) != size:
                return False
        except OSError:
            return False
    return True


def download(root: str | os.PathLike, base_url: str | None = None, files: dict | None = None,
             progress: bool = True) -> Path:
    """Fetch MTAT into `root`: audio folders 0-f, annotations and clip info.

    Resumable (each file is fetched into `NAME.part` with HTTP Range), verified (sha256 against the
    published checksums), idempotent (a verified file is recorded in `download.json` and not fetched
    again). A finished extraction is recorded with every file it wrote and recognised from those files, so
    the zip parts may be deleted once it is done. `base_url` is a mirror; by default the official host's
    current address is tried first, then its old one. Needs about 6 GB free while the zip parts are kept.

    Chapter: 01_data
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    files = dict(MTAT_FILES if files is None else files)
    urls = (base_url,) if base_url else BASE_URLS
    state_path = root / "download.json"
    state = read_json(state_path, "delete it and rerun `rawtag download`: the files there are checked again"
                      ) if state_path.exists() else {}
    parts = [p for p in AUDIO_PARTS if p in files]
    done = _extracted(root, state.get("extracted"))

    def save():
        write_text(state_path, json.dumps(state, indent=1, sort_keys=True))

    for name, digest in files.items():
        dest = root / name
        record = state.get(name, {})
        if name in parts and done:
            continue  # extracted: the parts are no longer needed (they may have been deleted)
        if dest.exists() and record.get("sha256") == digest and record.get("bytes") == dest.stat().st_size:
            continue
        if dest.exists() and sha256_of(dest) == digest:
            pass  # put there by hand or by an earlier run that died before recording it
        else:
            _fetch_first(urls, name, dest, digest, progress)
        state[name] = {"sha256": digest, "bytes": dest.stat().st_size}
        save()
    if parts and not done:
        paths = [root / p for p in parts]
        try:
            state["extracted"] = extract_parts(paths, root, progress)
        except _BadArchive as e:  # not kept as verified: a rerun fetches them again
            for p in paths:
                p.replace(p.with_name(p.name + ".bad"))
                state.pop(p.name, None)
            save()
            raise MTATError(f"{e}; they were moved to {paths[0].name}.bad etc.: rerun `rawtag download` to fetch "
                            f"them again") from e
        if not _extracted(root, state["extracted"]):
            raise MTATError(f"{root}: the extracted files are not all there after extraction; rerun "
                            f"`rawtag download` to extract again")
        save()
    return root

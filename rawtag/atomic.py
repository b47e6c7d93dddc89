"""Files that are either complete or absent: write to a temporary sibling, rename over the target.

Used by every step that writes results (download, synth, prepare, train), so a killed process never
leaves a half-written file under its final name. Also the helpers every writer shares for a full disk:
`pwrite_all` (a write checked for its full length), `DiskFull` (a one-line error saying how much space
is needed and how to resume) and `free_bytes`. Chapter 01 writes the synthetic set and the
prepared set this way.

Chapter: 01_data
"""
from __future__ import annotations

import errno
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

#: errno values that mean "no room to write": a full disk, a full quota, a file-size limit.
FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
RESUME = "free some space and rerun the same command to resume"


class DiskFull(OSError):
    """Not enough room to write; the message names the file or folder, the space needed and the fix.

    Construct as `DiskFull(errno.ENOSPC, message)` (so it pickles across processes); `str()` is the message.

    Chapter: 01_data
    """

    def __str__(self):
        return str(self.strerror)


class InUse(RuntimeError):
    """Another process is writing this folder (it holds the folder's lock); the message says what to do.

    Chapter: 01_data
    """


def is_full(e: BaseException) -> bool:
    """True when `e` is an OSError meaning the disk (or the quota, or the file-size limit) is full.

    Chapter: 01_data
    """
    return isinstance(e, OSError) and e.errno in FULL


def human(n: float) -> str:
    """Bytes as a short human-readable size: 812 B, 3.4 MB, 11.6 TB.

    Chapter: 01_data
    """
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def free_bytes(path: str | os.PathLike) -> int:
    """Free bytes on the disk that holds `path` (or its nearest existing parent).

    Chapter: 01_data
    """
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def require_space(path: str | os.PathLike, needed: int, what: str) -> None:
    """Raise DiskFull before writing when the disk of `path` has less than `needed` bytes free.

    Chapter: 01_data
    """
    free = free_bytes(path)
    if needed > free:
        raise DiskFull(errno.ENOSPC, f"{what} needs about {human(needed)} free in {path}, but its disk has "
                                     f"{human(free)}; free some space or choose another place")


def full_error(path: str | os.PathLike, e: OSError, needed: str = "") -> DiskFull:
    """The one-line DiskFull for a write of `path` that failed with a full-disk errno.

    Chapter: 01_data
    """
    reason = {errno.EFBIG: "file too large (a file-size limit?)"}.get(e.errno, e.strerror or "disk full")
    more = f"; about {needed} more is needed" if needed else ""
    return DiskFull(errno.ENOSPC, f"cannot write {path}: {reason} ({human(free_bytes(path))} free){more}; {RESUME}")


def pwrite_all(fd: int, data: bytes, offset: int) -> None:
    """os.pwrite until every byte is written (a short write is retried; no progress at all is ENOSPC).

    Chapter: 01_data
    """
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        if n <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view, offset = view[n:], offset + n


@contextmanager
def replacing(path: str | os.PathLike):
    """Yield a temporary path beside `path` (same suffix); rename it to `path` if the block succeeds.

    A full disk while writing becomes a one-line `DiskFull`; the temporary file is removed either way.

    Chapter: 01_data
    """
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
    try:
        try:
            yield tmp
        except OSError as e:
            if is_full(e) and not isinstance(e, DiskFull):
                raise full_error(path, e) from e
            raise
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def locked(folder: str | os.PathLike, command: str):
    """Hold `folder`'s lock (made if missing) while the block runs: a second writer gets InUse at once.

    The lock is an exclusive flock on the folder itself, so nothing is added to it and a killed process
    releases it. A folder made here and still empty at the end (the command was refused) is removed. A
    path that is a file is not locked: the command's own checks refuse it.

    Chapter: 01_data
    """
    import fcntl

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        yield
        return
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InUse(f"{folder} is in use by another `rawtag {command}` (or another process writing it); "
                        f"wait for it to finish, or choose another folder") from None
        try:
            yield
        finally:
            if made and not any(folder.iterdir()):
                folder.rmdir()
    finally:
        os.close(fd)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically: the old file or the new one, never a half-written one.

    Chapter: 01_data
    """
    with replacing(path) as tmp:
        Path(tmp).write_text(text)


def read_json(path: str | os.PathLike, fix: str, keys: tuple[str, ...] = ()) -> dict:
    """The JSON object in `path`, which must hold `keys`. A file that is not one (truncated, edited, another
    kind of file) raises a one-line ValueError naming the file, what is wrong with it and `fix`.

    Chapter: 01_data
    """
    try:
        data = json.loads(Path(path).read_text())
    except UnicodeDecodeError:
        why = "not text"
    except ValueError as e:
        why = f"not valid JSON: {e}"
    else:
        missing = [k for k in keys if k not in data] if isinstance(data, dict) else []
        if isinstance(data, dict) and not missing:
            return data
        why = f"no {', '.join(missing)}" if missing else f"a JSON {type(data).__name__}, not an object"
    raise ValueError(f"{path} is damaged ({why}); {fix}")

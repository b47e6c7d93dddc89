"""The General MIDI banks the book names, found on the system or fetched once, each checked by its SHA-256.

Taught in chapter 01 (data). The sampler plays any General MIDI SoundFont; two have names here:
- **TimGM6mb** (6 MB, GPL-2, Tim Brechbill): shipped inside the `pretty_midi` wheel, so it needs nothing
  but pip. The smoke profile's bank (CI, offline) and `rawtag synth`'s default.
- **FluidR3_GM** (148 MB, MIT, Frank Wen): many more recordings per instrument. The quick profile's bank,
  so the book's: on it a model's tags agree better with real music (`benchmarks/README.md`, "Another
  SoundFont"). It is not on PyPI: `bank_file` takes a system's copy (Debian's and Ubuntu's
  `fluid-soundfont-gm` put it in /usr/share/sounds/sf2) when its SHA-256 is the known one, else fetches
  Debian's package (120 MB, resumable, verified), unpacks the .sf2 into `$RAWTAG_CACHE/soundfonts`
  (default ~/.cache/rawtag) and deletes the package.

`RAWTAG_SOUNDFONT` (a name or an .sf2 file) overrides a profile's bank, e.g. `RAWTAG_SOUNDFONT=TimGM6mb
./dev book` offline.

Chapter: 01_data
"""
from __future__ import annotations

import io
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from .sampler import DEFAULT, cache_root, check_soundfont


class BankError(ValueError):
    """A named bank that cannot be found or fetched: the message names each fix.

    Chapter: 01_data
    """


@dataclass(frozen=True)
class Fetchable:
    """A SoundFont known by name: where systems install it, and the Debian package that holds it.

    Chapter: 01_data
    """

    name: str
    sha256: str  # of the .sf2 file itself
    installed: tuple[str, ...]  # where operating systems' packages put it
    package: str  # the .deb's file name
    package_sha256: str
    package_urls: tuple[str, ...]  # folders that serve `package`, tried in turn
    member: str  # the .sf2's path inside the package's data archive
    install_hint: str  # the one-line fix for a system without network

    @property
    def file(self) -> str:
        return Path(self.member).name


FLUIDR3_GM = Fetchable(
    name="FluidR3_GM",
    sha256="74594e8f4250680adf590507a306655a299935343583256f3b722c48a1bc1cb0",
    installed=("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/soundfonts/FluidR3_GM.sf2"),
    package="fluid-soundfont-gm_3.1-5.3_all.deb",
    package_sha256="6f531493ac4e4d9772fd96b2488ea1790af81c196135fbdd25997da0781fc60e",
    package_urls=("https://deb.debian.org/debian/pool/main/f/fluid-soundfont/",
                  "http://deb.debian.org/debian/pool/main/f/fluid-soundfont/"),
    member="./usr/share/sounds/sf2/FluidR3_GM.sf2",
    install_hint="apt-get install fluid-soundfont-gm",
)
NAMED = {FLUIDR3_GM.name: FLUIDR3_GM}  # the banks found or fetched by name (DEFAULT ships with pretty_midi)


def bank_file(bank: str | os.PathLike | None, progress: bool = True) -> str | None:
    """The SoundFont file to play for `bank`: None (the sampler's default, TimGM6mb) for None or "TimGM6mb";
    a named bank's file, found or fetched (`find_or_fetch`); else `bank` is a path to an .sf2 file, checked
    (`sampler.check_soundfont`). A ValueError names the problem and its fix.

    Chapter: 01_data
    """
    if bank is None or str(bank) == DEFAULT:
        return None
    if str(bank) in NAMED:
        return find_or_fetch(NAMED[str(bank)], progress=progress)
    return check_soundfont(bank)


def find_or_fetch(spec: Fetchable, folder: str | os.PathLike | None = None, progress: bool = True) -> str:
    """The path of `spec`'s .sf2: the copy in `folder` (default `$RAWTAG_CACHE/soundfonts`) or a system's,
    the first whose SHA-256 is `spec.sha256`; else fetched from Debian into `folder`.

    The package is downloaded as `NAME.part` (a cut download resumes), checked against its SHA-256, and the
    .sf2 unpacked as `NAME.sf2.part`, checked, then renamed: a killed fetch never leaves a file that looks
    complete. A wrong or damaged copy elsewhere is left alone and not used.

    Chapter: 01_data
    """
    from ..download import _fetch_first, sha256_of
    from ..mtat import MTATError

    folder = Path(folder) if folder is not None else cache_root() / "soundfonts"
    target = folder / spec.file
    for candidate in (target, *map(Path, spec.installed)):
        if candidate.is_file() and sha256_of(candidate) == spec.sha256:
            return str(candidate)
    folder.mkdir(parents=True, exist_ok=True)
    deb = folder / spec.package
    if progress:
        print(f"soundfont: {spec.name} is not installed: fetching it once ({spec.package}, 120 MB)", flush=True)
    try:
        _fetch_first(spec.package_urls, spec.package, deb, spec.package_sha256, progress,
                     rerun="the same command")
    except MTATError as e:
        raise BankError(f"the {spec.name} SoundFont is not installed and could not be fetched ({e}). Fixes: "
                        f"`{spec.install_hint}`; or put {spec.file} (sha256 {spec.sha256[:12]}...) in {folder}; "
                        f"or play the bank pip installs: RAWTAG_SOUNDFONT={DEFAULT} (for the book) or "
                        f"--soundfont {DEFAULT}") from None
    part = target.with_name(target.name + ".part")
    with open(part, "wb") as out:
        _unpack_deb_member(deb, spec.member, out)
    if sha256_of(part) != spec.sha256:
        part.unlink()
        raise BankError(f"{spec.package}: its {spec.file} does not have the known sha256; nothing was kept. "
                        f"Delete {deb} and rerun to fetch the package again, or `{spec.install_hint}`")
    part.replace(target)
    deb.unlink()
    return str(target)


class _Slice(io.RawIOBase):
    """Bytes [start, start + size) of an open file, read as a file of their own (one member of an archive)."""

    def __init__(self, f, start: int, size: int):
        self._f, self._left = f, size
        f.seek(start)

    def readable(self):
        return True

    def readinto(self, buffer):
        n = self._f.readinto(memoryview(buffer)[: min(len(buffer), self._left)])
        self._left -= n
        return n


def _unpack_deb_member(deb: Path, member: str, out) -> None:
    """Copy the file `member` of the Debian package `deb` into the open file `out`. A .deb is an `ar`
    archive (an 8-byte magic, then members each behind a 60-byte header: name, dates, owner, mode, size)
    whose `data.tar.*` member is a compressed tar of the files it installs."""
    with open(deb, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise BankError(f"{deb.name}: not a Debian package (no ar header); delete it and rerun")
        while len(header := f.read(60)) == 60:
            name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
            start = f.tell()
            if name.startswith("data.tar"):
                with tarfile.open(fileobj=io.BufferedReader(_Slice(f, start, size)), mode="r|*") as tar:
                    for info in tar:
                        if info.name == member and info.isfile():
                            shutil.copyfileobj(tar.extractfile(info), out, 1 << 20)
                            return
                raise BankError(f"{deb.name}: holds no {member}; delete it and rerun")
            f.seek(start + size + size % 2)  # members are padded to an even length
    raise BankError(f"{deb.name}: no data archive in the package; delete it and rerun")

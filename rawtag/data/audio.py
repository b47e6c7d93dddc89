"""Audio in: decode any common format, downmix, resample, and cut a clip into the paper's sub-clips.

Taught in chapter 01 (data). The paper's geometry: 12 kHz audio, 10 sub-clips of 34,950 samples
(2.9125 s each), so a clip is 349,500 samples (29.125 s) viewed as [10, 1, 34950].

Chapter: 01_data
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
from contextlib import contextmanager

import numpy as np

SAMPLE_RATE = 12_000
SUBCLIPS = 10
SUBCLIP_SAMPLES = 34_950
CLIP_SAMPLES = SUBCLIPS * SUBCLIP_SAMPLES  # 349,500
MTAT_SECONDS = 29.1  # an MTAT clip, as prepared at any rate but the paper's (whose 29.125 s is 10 x 34,950)
INPUTS = ("subclips", "waveform")  # how a model takes a batch of clips (its class's INPUT)


class AudioError(RuntimeError):
    """A file that cannot be decoded; the message names the file and the reason.

    Chapter: 01_data
    """


def load(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode `path` (MP3, WAV, FLAC, OGG, ...) to mono float32 in [-1, 1] at `sample_rate`.

    Stereo and multichannel files are downmixed by averaging the channels; other rates are resampled
    with soxr (high quality). Raises AudioError for a missing, empty, unreadable or undecodable file, and
    for NaN or infinite samples. The decoder's notes about a file's headers stay off stderr.

    Chapter: 01_data
    """
    import soundfile as sf

    path = os.fspath(path)
    if not os.path.exists(path):
        raise AudioError(f"{path}: no such file")
    if not os.path.isfile(path):
        raise AudioError(f"{path}: not a regular file (a folder or a device?)")
    if os.path.getsize(path) == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    try:
        with open(path, "rb"):  # libsndfile says "System error." for a file it may not read
            pass
    except OSError as e:
        raise AudioError(f"{path}: cannot read it ({e.strerror.lower()}); check its permissions") from None
    try:
        with _decoder_notes():
            audio, rate = sf.read(path, dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile raises several types for bad data
        raise AudioError(f"{path}: cannot decode ({_why(path, e)})") from None
    if audio.size == 0:
        raise AudioError(f"{path}: no audio samples")
    bad = int(np.count_nonzero(~np.isfinite(audio)))
    if bad:  # a float file can hold them; they would be turned into zeros with a RuntimeWarning
        raise AudioError(f"{path}: not valid audio: {bad:,} of its {audio.size:,} samples are NaN or infinite")
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if rate != sample_rate:
        import soxr

        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


#: What libmpg123 prints on stderr about an MP3's headers while decoding it well ("Xing stream size off").
_DECODER_NOTE = re.compile(r"^(?:Warning|Note): ")


@contextmanager
def _decoder_notes():
    """Keep the C decoders' notes off stderr while a file is read: what they print on file descriptor 2
    goes to a temporary file, and any line that is not a libmpg123 note is passed on to stderr after."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as notes:
        os.dup2(notes.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            notes.seek(0)
            other = [line for line in notes.read().decode("utf-8", "replace").splitlines(keepends=True)
                     if not _DECODER_NOTE.match(line)]
            if other:
                sys.stderr.write("".join(other))


def _why(path: str, e: Exception) -> str:
    """libsndfile's reason, made true: for data it does not recognise it says "not a regular file". The
    file's bytes are looked at, never shown (they may be anything, a password file's included)."""
    reason = " ".join(str(getattr(e, "error_string", "") or e).split())
    if not reason or any(s in reason for s in ("not a regular file", "unknown format", "ormat not recognised")):
        with open(path, "rb") as f:
            head = f.read(512)
        looks = "text" if head and all(32 <= b < 127 or b in b"\t\r\n" for b in head) else "data"
        return f"not audio in a format libsndfile reads (MP3, WAV, FLAC, OGG): the file holds {looks}"
    return reason


def clip_samples(sample_rate: int) -> int:
    """Samples per prepared clip at `sample_rate`: the paper's 349,500 at 12 kHz (10 sub-clips of 34,950),
    else MTAT's 29.1 s rounded (641,655 at 22,050 Hz, the sample-level papers' rate).

    Chapter: 01_data
    """
    if sample_rate < 1:
        raise ValueError(f"sample rate must be a positive number of Hz, got {sample_rate}")
    return CLIP_SAMPLES if sample_rate == SAMPLE_RATE else round(MTAT_SECONDS * sample_rate)


def fix_length(audio: np.ndarray, length: int = CLIP_SAMPLES) -> np.ndarray:
    """Crop to the first `length` samples, or zero-pad at the end up to it.

    MTAT clips decode to about 29.12 s, i.e. ~349,490 samples at 12 kHz: a few samples of padding
    at most. Longer audio keeps its beginning (the paper feeds one fixed-length excerpt).

    Chapter: 01_data
    """
    if len(audio) >= length:
        return audio[:length]
    return np.pad(audio, (0, length - len(audio)))


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Float in [-1, 1] to int16 PCM (clipped to [-1, 1], so symmetric), the storage type of a prepared set.

    Chapter: 01_data
    """
    return np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)


def as_subclips(clip, subclips: int = SUBCLIPS):
    """View a clip of 349,500 samples (numpy or torch, with any leading batch axes) as [..., 10, 1, 34950].

    Chapter: 01_data
    """
    return clip.reshape(*clip.shape[:-1], subclips, 1, clip.shape[-1] // subclips)


def model_input(clips, layout: str):
    """Clips [B, L] shaped as a model of `layout` takes them: `subclips` [B, 10, 1, L / 10] (the paper's
    models), `waveform` [B, 1, L] (the sample-level models).

    Chapter: 07_beyond
    """
    if layout == "subclips":
        return as_subclips(clips)
    if layout == "waveform":
        return clips.reshape(clips.shape[0], 1, clips.shape[-1])
    raise ValueError(f"unknown model input {layout!r}; choose one of {', '.join(INPUTS)}")


def check_rate(model, sample_rate: int, where: str) -> None:
    """Refuse audio at another rate than the model was built for, with the command that makes the right set.

    Chapter: 07_beyond
    """
    want = getattr(model, "sample_rate", SAMPLE_RATE)
    if want != sample_rate:
        raise ValueError(f"{type(model).__name__} expects {want:,} Hz audio but {where} is at {sample_rate:,} Hz; "
                         f"prepare a set at its rate (`rawtag prepare --sample-rate {want} ...`) or build the model "
                         f"with sample_rate={sample_rate}")

"""Decoding, downmixing, resampling and the clip geometry."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from rawtag.data import audio
from conftest import MTAT_DIR, SHARED

REAL_CLIP = MTAT_DIR / "audio" / "e" / "joram-moments_of_clarity-08-solipsism-59-88.mp3"


@pytest.mark.skipif(not REAL_CLIP.exists(), reason=f"the real MTAT clip is absent ({REAL_CLIP})")
def test_real_mtat_clip_decodes_to_29_seconds():
    x16 = audio.load(REAL_CLIP, 16000)
    assert 29.0 < len(x16) / 16000 < 29.3
    x12 = audio.load(REAL_CLIP)
    assert abs(len(x12) - len(x16) * 0.75) <= 2
    assert x12.dtype == np.float32 and 0.05 < np.abs(x12).max() <= 1.0
    clip = audio.fix_length(x12)
    assert clip.shape == (audio.CLIP_SAMPLES,)
    assert audio.as_subclips(clip).shape == (10, 1, 34950)


@pytest.mark.parametrize("fmt,ext", [("WAV", "wav"), ("FLAC", "flac"), ("OGG", "ogg"), ("MP3", "mp3")])
def test_formats_stereo_and_rates(tmp_path, fmt, ext):
    rate = 44100
    t = np.arange(rate * 2) / rate
    left, right = np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t + 0.1)
    path = tmp_path / f"x.{ext}"
    sf.write(path, (0.5 * np.stack([left, right], axis=1)).astype(np.float32), rate, format=fmt)
    x = audio.load(path, 12000)
    assert x.ndim == 1 and abs(len(x) - 24000) < 1200  # MP3 adds encoder padding
    spectrum = np.abs(np.fft.rfft(x[2000:14000]))
    peak_hz = np.argmax(spectrum) * 12000 / 12000
    assert abs(peak_hz - 440) < 3  # the tone survives downmix and resampling


@pytest.mark.skipif(not (SHARED / "realaudio").exists(), reason="../shared/realaudio absent")
def test_real_ogg_excerpt():
    path = next((SHARED / "realaudio").glob("*.ogg"))
    x = audio.load(path)
    assert len(x) > 12000 and np.isfinite(x).all()


def test_fix_length_pads_and_crops():
    assert np.array_equal(audio.fix_length(np.ones(5, np.float32), 8), [1, 1, 1, 1, 1, 0, 0, 0])
    assert np.array_equal(audio.fix_length(np.arange(10.0), 4), [0, 1, 2, 3])


def test_int16_and_subclip_views():
    x = np.array([-1.5, -1.0, 0.0, 0.5, 1.0], np.float32)
    assert audio.to_int16(x).tolist() == [-32767, -32767, 0, 16384, 32767]
    batch = torch.arange(2 * audio.CLIP_SAMPLES).reshape(2, -1)
    sub = audio.as_subclips(batch)
    assert sub.shape == (2, 10, 1, 34950) and sub[1, 3, 0, 0] == audio.CLIP_SAMPLES + 3 * 34950


def test_bad_files_raise_clear_errors(tmp_path):
    with pytest.raises(audio.AudioError, match="no such file"):
        audio.load(tmp_path / "missing.mp3")
    (tmp_path / "empty.mp3").write_bytes(b"")
    with pytest.raises(audio.AudioError, match="empty file"):
        audio.load(tmp_path / "empty.mp3")
    (tmp_path / "junk.mp3").write_bytes(b"this is not audio at all" * 50)
    with pytest.raises(audio.AudioError, match="junk.mp3: cannot decode"):
        audio.load(tmp_path / "junk.mp3")

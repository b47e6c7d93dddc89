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


def _peak_hz(x: np.ndarray, rate: int, n: int = 16384) -> float:
    """The strongest frequency of `x` (skipping its first 2000 samples), in Hz for a signal at `rate`."""
    segment = x[2000:2000 + n]
    assert len(segment) == n, "too short to measure"
    return float(np.fft.rfftfreq(n, 1 / rate)[np.argmax(np.abs(np.fft.rfft(segment * np.hanning(n))))])


# the decoded length is exact, but for MP3: encoders pad, and decoders differ in removing it
@pytest.mark.parametrize("fmt,ext,slack_s", [("WAV", "wav", 0), ("FLAC", "flac", 0), ("OGG", "ogg", 0),
                                             ("MP3", "mp3", 0.05)])
@pytest.mark.parametrize("rate,target", [(44100, 12000), (22050, 16000), (8000, 12000)])
def test_formats_stereo_and_rates(tmp_path, fmt, ext, slack_s, rate, target):
    seconds = 2
    t = np.arange(rate * seconds) / rate
    left, right = np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t + 0.1)
    path = tmp_path / f"x.{ext}"
    sf.write(path, (0.5 * np.stack([left, right], axis=1)).astype(np.float32), rate, format=fmt)
    x = audio.load(path, target)
    assert x.ndim == 1 and x.dtype == np.float32
    assert abs(len(x) - seconds * target) <= slack_s * target  # `target` samples per second, not `rate`
    # the tone is at 440 Hz when read at `target` Hz (bins of target / 16384 Hz, under 1 Hz apart): resampled,
    # not relabelled (a 44.1 kHz file taken as 12 kHz would put it at 120 Hz; 8 kHz as 12 kHz at 660 Hz)
    assert abs(_peak_hz(x, target) - 440) < 2


def test_default_rate_is_the_papers_and_resampling_filters_aliases(tmp_path):
    assert audio.SAMPLE_RATE == 12000 and audio.CLIP_SAMPLES / audio.SAMPLE_RATE == pytest.approx(29.125)
    rate = 48000
    t = np.arange(rate * 2) / rate

    def tone(hz):
        return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)

    sf.write(tmp_path / "low.wav", tone(1000), rate)
    low = audio.load(tmp_path / "low.wav")  # default: 12 kHz
    assert len(low) == 2 * 12000 and abs(_peak_hz(low, 12000) - 1000) < 2
    # 7 kHz is above 12 kHz's Nyquist (6 kHz): resampling must filter it out, not fold it to 12 - 7 = 5 kHz
    sf.write(tmp_path / "high.wav", tone(7000), rate)
    high = audio.load(tmp_path / "high.wav")
    assert len(high) == 2 * 12000
    assert np.sqrt(np.mean(high[2000:-2000] ** 2)) < 0.01 * np.sqrt(np.mean(low[2000:-2000] ** 2))


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

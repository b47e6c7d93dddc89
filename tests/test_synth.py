"""The synthetic set: MTAT's format, determinism, the tag mechanisms and MTAT-like statistics."""
from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest

from rawtag.data import mtat, synth

from conftest import MTAT_DIR

TOP50_MTAT = ("guitar classical slow techno strings drums electronic rock fast piano ambient beat violin vocal "
              "synth female indian opera male singing vocals|no vocals|harpsichord|loud|quiet|flute|woman|"
              "male vocal|no vocal|pop|soft|sitar|solo|man|classic|choir|voice|new age|dance|male voice|"
              "female vocal|beats|harp|cello|no voice|weird|country|female voice|metal|choral")


def _top50():
    head, *rest = TOP50_MTAT.split("|")
    return head.split() + rest


def test_top50_constant_matches_shared_readme():
    readme = MTAT_DIR / "README.md"
    if not readme.exists():
        pytest.skip("../shared/mtat absent")
    assert len(_top50()) == 50 and ", ".join(_top50()) in " ".join(readme.read_text().split())


def test_on_disk_format_is_mtat(synth_source):
    ann = mtat.read_annotations(synth_source / mtat.ANNOTATIONS)
    assert ann.tags == list(mtat.MTAT_TAGS)
    raw = (synth_source / mtat.ANNOTATIONS).read_bytes()
    assert raw.startswith(b'"clip_id"\t"no voice"\t') and raw.count(b"\r\n") == len(ann.clip_ids) + 1
    assert set(t for t in ann.tags if ann.matrix[:, ann.tags.index(t)].any()) <= set(synth.SYNTH_TAGS)
    for path in ann.mp3_paths:
        assert path[0] in "0123456789abcdef" and path[1] == "/" and path.endswith(".mp3")
        info = __import__("soundfile").info(str(synth_source / path))
        assert info.samplerate == 16000 and info.channels == 1 and info.format == "MP3"
        assert 29.0 < info.duration < 29.5
    assert (synth_source / mtat.CLIP_INFO).read_bytes().startswith(b'"clip_id"\t"track_number"')


def test_same_seed_same_bytes(tmp_path):
    a = synth.write_synthetic(tmp_path / "a", clips=3, seed=11, workers=1, progress=False)
    b = synth.write_synthetic(tmp_path / "b", clips=3, seed=11, workers=2, progress=False)
    c = synth.write_synthetic(tmp_path / "c", clips=3, seed=12, workers=1, progress=False)

    def digest(root):
        return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    assert digest(a) == digest(b)
    assert digest(a) != digest(c)


def test_vocabulary_is_mtat_top50_with_sixteen_or_more_mechanisms():
    assert set(synth.SYNTH_TAGS) <= set(_top50()) and len(synth.SYNTH_TAGS) >= 16
    items = synth.plan(3000, seed=0)
    counts = Counter(t for it in items for t in it.tags)
    assert len(counts) == 50  # every top-50 tag occurs
    freq = sorted(counts.values(), reverse=True)
    assert freq[0] > 8 * freq[-1]  # long-tailed


def test_co_occurrence_like_mtat():
    items = synth.plan(3000, seed=1)

    def tagged(*ts):
        return [it for it in items if all(t in it.tags for t in ts)]

    classical = tagged("classical")
    assert sum("drums" in it.tags for it in classical) / len(classical) < 0.02
    assert sum(("strings" in it.tags) or ("piano" in it.tags) or ("harpsichord" in it.tags)
               for it in classical) / len(classical) > 0.6
    techno = tagged("techno")
    assert sum(("synth" in it.tags) or ("beat" in it.tags) or ("drums" in it.tags) for it in techno) / len(techno) > 0.8
    assert not tagged("no vocals", "female")  # the annotator never contradicts the facts


def test_label_drop_weakens_labels():
    full = sum(len(it.tags) for it in synth.plan(1000, seed=2, label_drop=0.0))
    weak = sum(len(it.tags) for it in synth.plan(1000, seed=2, label_drop=0.5))
    assert 0.4 < weak / full < 0.6


def test_mechanisms_are_audible_in_the_spectrum():
    rng = np.random.default_rng(0)
    n = synth.SR
    piano = synth.pluck(110.0, n, rng, inharmonic=4e-4, decay=1.0, brightness=0.9)
    spec = np.abs(np.fft.rfft(piano))
    f = np.fft.rfftfreq(n, 1 / synth.SR)
    tenth = f[np.argmax(spec * ((f > 1050) & (f < 1250)))]
    assert tenth > 1110  # a stiff string's 10th partial is sharp of 10 x 110 Hz
    low = synth.voice(120.0, n, rng, vowel="a")
    high = synth.voice(300.0, n, rng, vowel="a", formant_shift=1.15)

    def centroid(x):
        spectrum = np.abs(np.fft.rfft(x))
        return (f * spectrum).sum() / spectrum.sum()

    assert centroid(high) > centroid(low)
    assert np.abs(synth.render_clip(synth.plan(1, seed=5)[0].song, rng)).max() <= 1.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least 1"):
        synth.plan(0)
    with pytest.raises(ValueError, match="label_drop"):
        synth.plan(5, label_drop=1.5)

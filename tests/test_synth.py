"""The synthetic set: MTAT's format, determinism, the tag mechanisms and MTAT-like statistics."""
from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest

from rawtag.data import mtat, synth

from conftest import MTAT_DIR, other_soundfont

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


def _peak_hz(x):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / synth.SR)[np.argmax(spectrum)]


def test_recorded_notes_are_in_tune_and_placed_by_the_score():
    from rawtag.data.synth import sampler

    # a recorded violin's A4 and A3 (General MIDI program 40): the strongest partial of a steady half second
    # is the fundamental or an octave of it, so its pitch class is A, and one octave down halves it
    a4, a3 = sampler.note(40, 69), sampler.note(40, 57)
    f4, f3 = _peak_hz(a4[4000:12000]), _peak_hz(a3[4000:12000])
    assert abs(12 * np.log2(f4 / 440.0) - round(12 * np.log2(f4 / 440.0) / 12) * 12) < 0.5
    assert abs(12 * np.log2(f4 / f3) - round(12 * np.log2(f4 / f3) / 12) * 12) < 0.5
    assert sampler.note(40, 69) is a4  # rendered once, then served from memory
    # play: silence before the onset, the note at its onset, cut (with its release) after its duration
    part = sampler.play([(0.5, 69, 0.5, 80)], 40, synth.SR * 2, release=0.1)
    half = synth.SR // 2
    assert np.abs(part[:half]).max() == 0 and np.abs(part[half:half + 4000]).max() > 0.01
    assert np.abs(part[int(1.1 * synth.SR) + 1:]).max() == 0
    louder = sampler.play([(0.5, 69, 0.5, 120)], 40, synth.SR * 2, release=0.1)
    assert np.abs(louder).max() == pytest.approx(np.abs(part).max() * (120 / 80) ** 2, rel=1e-5)
    # the release is rendered: a held note rings on after its key is let go
    held = sampler.note(40, 69)
    assert len(held) > (sampler.HOLD + 0.05) * synth.SR


def test_a_score_plays_each_style_as_its_facts_say():
    items = synth.plan(300, seed=4)
    for it in items[::12]:
        parts = synth.score(it.song, np.random.default_rng(0))
        names = {p.name for p in parts}
        drummed = "drums" in it.song.instruments or "tabla" in it.song.instruments
        assert ({"drums", "tabla"} & names != set()) == drummed, it.song
        assert {i for i in it.song.instruments if i not in ("drums", "tabla")} <= names
        if it.song.vocal != "none":
            assert it.song.vocal in names
        for p in parts:
            if p.name in synth.REGISTER and not p.drum and p.name not in ("drone",):
                lo, hi = synth.REGISTER[p.name]
                assert all(lo - 12 <= n[1] <= hi + 12 for n in p.notes), (p.name, it.song.style)
            assert all(0 <= n[0] < synth.CLIP_SECONDS + 4 and 1 <= n[3] <= 127 for n in p.notes)


def test_voices_and_clips():
    rng = np.random.default_rng(0)
    n = synth.SR
    f = np.fft.rfftfreq(n, 1 / synth.SR)
    low = synth.voice(120.0, n, rng, vowel="a")
    high = synth.voice(300.0, n, rng, vowel="a", formant_shift=1.15)

    def centroid(x):
        spectrum = np.abs(np.fft.rfft(x))
        return (f * spectrum).sum() / spectrum.sum()

    assert centroid(high) > centroid(low)
    clip = synth.render_clip(synth.plan(1, seed=5)[0].song, rng)
    assert clip.shape == (synth.CLIP_LEN,) and 0.01 < np.abs(clip).max() <= 1.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least 1"):
        synth.plan(0)
    with pytest.raises(ValueError, match="label_drop"):
        synth.plan(5, label_drop=1.5)


def test_another_soundfont_is_checked_named_and_cached_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("RAWTAG_CACHE", str(tmp_path / "cache"))
    assert synth.check_soundfont(None) is None and synth.bank_name() == "TimGM6mb"
    with pytest.raises(ValueError, match="--soundfont .*no such file; give a bank.s name .*or the path of a Gen"):
        synth.check_soundfont(tmp_path / "missing.sf2")
    (tmp_path / "song.mp3").write_bytes(b"ID3" + bytes(100))
    with pytest.raises(ValueError, match="not a SoundFont 2 file"):
        synth.check_soundfont(tmp_path / "song.mp3")
    other = synth.check_soundfont(other_soundfont(tmp_path))
    name = synth.bank_name(other)
    assert name.startswith("other-") and len(name) == len("other-") + 12
    assert synth.notes_folder(other) != synth.notes_folder() and synth.notes_folder(other).name.startswith(name)
    a4 = synth.note(40, 69, soundfont=other)
    assert (synth.notes_folder(other) / "program40-key69-vel100.npy").is_file()
    assert np.array_equal(a4, synth.note(40, 69))  # the same recordings under another name: the same note


def _deb(path, files: dict) -> bytes:
    """A Debian package as `dpkg-deb` lays it out (an ar archive: debian-binary, control.tar.xz, data.tar.xz)
    holding `files` (path inside the package -> bytes); the control member has an odd length, so the
    reader must skip ar's padding byte."""
    import io
    import tarfile

    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    members = {"debian-binary": b"2.0\n", "control.tar.xz": b"odd", "data.tar.xz": data.getvalue()}
    out = b"!<arch>\n"
    for name, content in members.items():
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(content):<10}".encode() + b"`\n"
        out += header + content + (b"\n" if len(content) % 2 else b"")
    path.write_bytes(out)
    return out


def test_a_named_bank_is_found_by_its_checksum_or_fetched_once(tmp_path):
    from dataclasses import replace

    sf2 = b"RIFF\x10\x00\x00\x00sfbk" + bytes(range(256)) * 3
    served = tmp_path / "mirror"
    served.mkdir()
    deb = _deb(served / "fluid.deb", {"./usr/share/doc/README": b"hello",
                                      "./usr/share/sounds/sf2/FluidR3_GM.sf2": sf2})
    sha = lambda b: hashlib.sha256(b).hexdigest()  # noqa: E731
    spec = replace(synth.FLUIDR3_GM, sha256=sha(sf2), package="fluid.deb", package_sha256=sha(deb),
                   package_urls=("file:///nonexistent/", served.as_uri() + "/"), installed=())
    cache = tmp_path / "cache"
    path = synth.find_or_fetch(spec, cache, progress=False)  # the first folder fails, the second serves it
    assert path == str(cache / "FluidR3_GM.sf2") and (cache / "FluidR3_GM.sf2").read_bytes() == sf2
    assert sorted(p.name for p in cache.iterdir()) == ["FluidR3_GM.sf2"]  # the package and parts are gone
    offline = replace(spec, package_urls=("file:///nonexistent/",))
    assert synth.find_or_fetch(offline, cache, progress=False) == path  # found again: nothing fetched
    system = tmp_path / "usr" / "FluidR3_GM.sf2"
    system.parent.mkdir()
    system.write_bytes(sf2)
    assert synth.find_or_fetch(replace(offline, installed=(str(system),)), tmp_path / "empty", progress=False) \
        == str(system)  # a system's copy with the known checksum is used where it lies
    system.write_bytes(sf2[:-1] + b"X")  # another file under the same name: not used, left alone
    with pytest.raises(synth.BankError, match="could not be fetched.*apt-get install fluid-soundfont-gm.*"
                                              "RAWTAG_SOUNDFONT=TimGM6mb"):
        synth.find_or_fetch(replace(offline, installed=(str(system),)), tmp_path / "empty", progress=False)
    assert system.read_bytes() == sf2[:-1] + b"X" and list((tmp_path / "empty").iterdir()) == []
    wrong = replace(spec, sha256=sha(b"another bank"))  # a package whose .sf2 is not the one expected
    with pytest.raises(synth.BankError, match="does not have the known sha256; nothing was kept"):
        synth.find_or_fetch(wrong, tmp_path / "wrong", progress=False)
    assert not list((tmp_path / "wrong").glob("*.sf2*"))  # no .sf2, not even a part, looks complete
    assert synth.bank_file("TimGM6mb") is None and synth.bank_file(None) is None  # the bank pip installs


def test_a_set_remembers_its_soundfont(tmp_path, monkeypatch):
    monkeypatch.setenv("RAWTAG_CACHE", str(tmp_path / "cache"))
    other = other_soundfont(tmp_path)
    out = synth.write_synthetic(tmp_path / "set", clips=1, seed=4, workers=1, progress=False, soundfont=other)
    marker = __import__("json").loads((out / synth.MARKER).read_text())
    assert marker["soundfont"] == synth.bank_name(synth.check_soundfont(other))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(synth.SynthError, match=f"SoundFont {marker['soundfont']}.*--force"):
        synth.write_synthetic(out, clips=1, seed=4, workers=1, progress=False)  # the default bank: refused
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing touched
    synth.write_synthetic(out, clips=1, seed=4, workers=1, progress=False, soundfont=other)  # same bank: resumes
    default = synth.write_synthetic(tmp_path / "default", clips=1, seed=4, workers=1, progress=False)
    assert "soundfont" not in __import__("json").loads((default / synth.MARKER).read_text())
    clip = next(p for p in out.rglob("*.mp3"))
    assert clip.read_bytes() == (default / clip.relative_to(out)).read_bytes()  # same recordings, same clip

"""Preparation: the memmap and manifest, idempotence, bad files, and a kill followed by a resume."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rawtag.data import audio, mtat
from rawtag.data.prepare import PreparedSet, PrepareError, prepare

from conftest import tone_source


def _digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_prepared_layout(synth_source, synth_prepared):
    data = PreparedSet(synth_prepared)
    n = len(data.paths)
    assert data.clips.shape == (n, audio.CLIP_SAMPLES) and data.clips.dtype == np.int16
    assert data.labels.shape == (n, len(data.tags)) and data.rowstats.shape == (n, 2)
    assert sorted(np.concatenate([data.rows(s) for s in ("train", "valid", "test")]).tolist()) == list(range(n))
    ann = mtat.read_annotations(synth_source / mtat.ANNOTATIONS)
    i = 0
    expect = audio.to_int16(audio.fix_length(audio.load(synth_source / data.paths[i])))
    assert np.array_equal(data.clips[i], expect)
    row = ann.mp3_paths.index(data.paths[i])
    assert data.labels[i].tolist() == [ann.matrix[row, ann.tags.index(t)] for t in data.tags]
    assert data.rowstats[i].tolist() == [expect.min(), expect.max()]
    assert not (synth_prepared / ".prepare").exists()


def test_rerun_does_nothing_and_other_parameters_refused(synth_source, synth_prepared, capsys):
    before = _digest(synth_prepared)
    prepare(synth_source, synth_prepared, workers=2)
    assert "nothing to do" in capsys.readouterr().out
    assert _digest(synth_prepared) == before
    with pytest.raises(PrepareError, match="other parameters"):
        prepare(synth_source, synth_prepared, top_k=10, progress=False)


def test_not_prepared_folder_error(tmp_path):
    with pytest.raises(PrepareError, match="not a prepared data folder.*rawtag prepare"):
        PreparedSet(tmp_path)


def test_bad_files_are_skipped_or_converted(tmp_path):
    src = tone_source(tmp_path / "src", clips=16)
    ann = mtat.read_annotations(src / mtat.ANNOTATIONS)
    p = ann.mp3_paths
    (src / p[0]).write_bytes(b"")                                   # zero bytes
    (src / p[1]).write_bytes(b"RIFF....WAVEfmt garbage" * 10)       # corrupt
    (src / p[2]).unlink()                                           # missing
    sf.write(src / p[3], np.zeros(16000 * 5, np.float32), 16000)   # truncated: 5 s
    t = np.arange(44100 * 30) / 44100                               # stereo at 44.1 kHz
    sf.write(src / p[4], np.stack([np.sin(2 * np.pi * 440 * t)] * 2, 1).astype(np.float32) * 0.3, 44100)
    out = prepare(src, tmp_path / "out", top_k=4, workers=2, progress=False)
    data = PreparedSet(out)
    reasons = {s["path"]: s["reason"] for s in data.manifest["skipped"]}
    assert "empty file" in reasons[p[0]] and "cannot decode" in reasons[p[1]]
    assert "no such file" in reasons[p[2]] and reasons[p[3]].startswith("truncated: 5.00 s")
    kept = np.concatenate([data.rows(s) for s in ("train", "valid", "test")])
    assert len(kept) == 12 and not set(kept) & {s["row"] for s in data.manifest["skipped"]}
    stereo_row = data.paths.index(p[4])
    assert stereo_row in kept and data.rowstats[stereo_row, 1] > 9000


def test_killed_preparation_resumes_byte_identical(tmp_path, monkeypatch):
    src = tone_source(tmp_path / "src", clips=48)
    whole = prepare(src, tmp_path / "whole", top_k=4, workers=1, progress=False)
    out = tmp_path / "killed"
    code = (f"from rawtag.data.prepare import prepare; "
            f"prepare({str(src)!r}, {str(out)!r}, top_k=4, workers=1, progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    log = out / ".prepare" / "done.log"
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and log.read_text().count("\n") >= 10:
            break
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    assert not (out / "manifest.json").exists(), "the run finished before it could be killed"
    with pytest.raises(PrepareError, match="unfinished preparation"):
        PreparedSet(out)
    done_before = log.read_text().count("\n")
    assert 10 <= done_before < 48
    decoded = []
    load = audio.load

    def counted_load(path, *args, **kwargs):
        decoded.append(path)
        return load(path, *args, **kwargs)

    monkeypatch.setattr(audio, "load", counted_load)  # workers=1: every clip is decoded in this process
    prepare(src, out, top_k=4, workers=1, progress=False)
    assert len(decoded) == 48 - done_before  # no clip decoded twice
    assert len(set(decoded)) == len(decoded)
    assert _digest(out) == _digest(whole)
    assert json.loads((out / "manifest.json").read_text()) == json.loads((whole / "manifest.json").read_text())


def test_prepare_cli_and_errors(tmp_path, capsys):
    from rawtag.__main__ import main

    assert main(["prepare", "--source", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "no such annotation file" in capsys.readouterr().err
    src = tone_source(tmp_path / "src", clips=8)
    assert main(["prepare", "--source", str(src), "--out", str(tmp_path / "o"), "--top-k", "4",
                 "--workers", "1"]) == 0
    assert (tmp_path / "o" / "manifest.json").exists()
    shutil.rmtree(tmp_path / "o")
    assert main(["prepare", "--source", str(src), "--out", str(tmp_path / "r"), "--top-k", "4", "--workers", "1",
                 "--sample-rate", "22050"]) == 0
    assert PreparedSet(tmp_path / "r").clips.shape == (8, 641_655), "29.1 s at 22,050 Hz"


def test_prepare_paper_scheme_labels_merged_tags(synth_source, tmp_path):
    data = PreparedSet(prepare(synth_source, tmp_path / "paper", scheme="paper", workers=2, progress=False))
    ann = mtat.read_annotations(synth_source / mtat.ANNOTATIONS)
    merged = mtat.merge_synonyms(ann)
    assert data.manifest["params"]["scheme"] == "paper" and data.tags == mtat.top_tags(merged, 50)
    synonyms = {c for cols in mtat.SYNONYMS.values() for c in cols} - set(mtat.SYNONYMS)
    assert not synonyms & set(data.tags)  # only merged names: no "drums", "electronic", "woman" ...
    train, valid = ({data.paths[i][0] for i in data.rows(s)} for s in ("train", "valid"))
    assert train and train <= set("0123456789abc") and "c" in train
    assert valid and valid <= set("def") and len(data.rows("test")) == 0
    rows = [merged.mp3_paths.index(p) for p in data.paths]
    assert data.labels.tolist() == merged.matrix[rows][:, [merged.tags.index(t) for t in data.tags]].tolist()

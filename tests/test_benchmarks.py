"""Each benchmark runs end to end at a tiny size and prints its side-by-side table (figures are not
asserted: speed targets are met in benchmark runs, not in timed unit tests)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import other_soundfont

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def rows(table: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()
            if line.startswith("| ") and not line.startswith("| method") and not line.startswith("| model")]


@pytest.mark.slow
def test_prepare_benchmark_runs_all_three_ways(tmp_path):
    out = run("prepare_bench.py", "--clips", "6", "--workers", "1", "2", "--root", str(tmp_path))
    assert out.startswith("machine: ")
    methods = [r[0] for r in rows(out)]
    assert methods.count("rawtag prepare") == 2 and methods.count("decode only (floor)") == 2
    assert any(m.startswith("baseline: librosa.load") for m in methods)
    for r in rows(out):
        assert float(r[3].replace(",", "")) > 0  # clips/s
    assert len(list((tmp_path / "out-baseline-1").glob("*.npy"))) == 6, "the baseline wrote a file per clip"


@pytest.mark.slow
def test_train_benchmark_compares_both_loops_on_every_setting(tmp_path):
    # two of the five base settings (each setting is the same code with other numbers) and the improved CNN
    out = run("train_bench.py", "--clips", "24", "--steps", "1", "--warmup", "1", "--device", "cpu",
              "--settings", "1024/512", "256/256", "--root", str(tmp_path))
    table = rows(out)
    models = sorted({r[0] for r in table})
    assert models == sorted(["base 1024/512", "base 256/256", "improved 256/256"])
    assert all({r[1] for r in table if r[0] == m} == {"baseline", "rawtag, data path before", "rawtag"}
               for m in models)
    assert all(sum(r[5] == "torch, fp32 (before)" for r in table if r[0] == m) == 1 for m in models)
    for r in table:
        assert float(r[2].replace(",", "")) > 0 and float(r[4].replace(",", "")) > 0
        assert re.fullmatch(r"\d+\.\d\dx", r[3])


def test_synth_benchmark_times_both_encoders_on_the_same_clips():
    out = run("synth_bench.py", "--clips", "2")
    table = {r[0]: r[1:] for r in rows(out) if not r[0].startswith("step") and not r[0].startswith("---")}
    assert set(table) == {"render (score, sampler, mix)", "encode: rawtag (lameenc, quality 7)",
                          "encode: baseline (libsndfile, level 0.85)"}
    sizes = [table[k][1] for k in table if k.startswith("encode")]
    assert sizes[0] == sizes[1] == "116,784"  # both constant 32 kbit/s over the same 29.1 s
    assert all(float(table[k][2]) > 10 for k in table if k.startswith("encode"))  # decoded close to the audio
    assert re.search(r"rawtag [\d.]+ s, baseline [\d.]+ s \([\d.]+x\)", out)


@pytest.mark.slow
def test_transfer_benchmark_scores_a_run_through_each_band(tone_prepared, tmp_path):
    import csv

    import numpy as np
    import soundfile as sf

    from rawtag.train import TrainConfig, fit

    fit(tone_prepared, tmp_path / "run", TrainConfig(epochs=1, max_train_clips=16), progress=False)
    music = tmp_path / "music"
    music.mkdir()
    t = np.arange(16000 * 3) / 16000
    reference = []
    for i in range(12):  # a 220 Hz tone ("guitar" in the tone set) in half the files, 1760 Hz ("flute") in the rest
        tone = 0.3 * np.sin(2 * np.pi * (220 if i % 2 else 1760) * t)
        sf.write(music / f"f{i}.wav", tone.astype(np.float32), 16000)
        probs = {"guitar": 0.9 * (i % 2), "flute": 0.9 * (1 - i % 2)}
        reference.append({"file": f"f{i}.wav", **{f"{tagger}:{tag}": p for tagger in ("musicnn", "vgg")
                                                   for tag, p in probs.items()}})
    with open(music / "reference.tsv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(reference[0]), delimiter="\t")
        w.writeheader()
        w.writerows(reference)
    out = run("transfer_bench.py", str(tmp_path / "run"), "--music", str(music), "--resamples", "50",
              "--band", "-1000", "--band", "500-")
    assert re.search(r"run: macro ROC-AUC [\d.]+ \[[\d.]+, [\d.]+\] over 2 tags; ceiling", out)
    number, interval = r"[\d.]+", r"[+-][\d.]+ \[[+-][\d.]+, [+-][\d.]+\]"
    for band in ("0-1000 Hz", "500-Nyquist Hz"):
        assert re.search(rf"band {band}: macro ROC-AUC {number} \[{number}, {number}\]; change from the unfiltered "
                         rf"files {interval}; per tag (guitar|flute) {number}, (guitar|flute) {number}", out)
    assert {r[0] for r in rows(out)} == {"tag", "flute", "guitar"}
    done = subprocess.run([sys.executable, str(BENCH / "transfer_bench.py"), str(tmp_path / "run"), "--band", "2k"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "expected LOW-HIGH in Hz" in done.stderr


@pytest.mark.slow
@pytest.mark.skipif(not (BENCH.parents[1] / "shared" / "realmusic" / "reference.tsv").exists(),
                    reason="no shared/realmusic")
def test_soundfont_benchmark_pairs_two_banks_by_seed(tmp_path):
    import os

    from rawtag.data import synth

    bank = other_soundfont(tmp_path)  # TimGM6mb's recordings under another name: a second bank to play
    done = subprocess.run([sys.executable, str(BENCH / "soundfont_bench.py"), "--soundfont", bank, "--clips", "24",
                           "--seeds", "0", "1", "--models", "base", "--profile", "smoke", "--resamples", "50",
                           "--root", str(tmp_path / "bench")],
                          capture_output=True, text=True, env={**os.environ, "RAWTAG_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr[-3000:]
    default = "TimGM6mb"
    table = [r for r in rows(done.stdout) if r[0] in (default, "other")]
    assert [tuple(r[:3]) for r in table] == [(default, "base", "0"), (default, "base", "1"),
                                             ("other", "base", "0"), ("other", "base", "1")]
    number = r"0\.\d{4}"
    assert all(re.fullmatch(number, r[3]) and re.fullmatch(rf"{number} \[{number}, {number}\]", r[4]) for r in table)
    # the same recordings under two names: the same clips, so the same runs, and differences of zero
    assert [r[3:] for r in table[:2]] == [r[3:] for r in table[2:]]
    diffs = [r for r in rows(done.stdout) if r[0] == "base"]
    assert [r[1] for r in diffs] == ["validation (two different stand-ins)", "real music"]
    assert all(r[2].startswith("+0.0000") or r[2].startswith("-0.0000") for r in diffs)
    assert (tmp_path / "bench" / "other" / "source" / synth.MARKER).read_text().count("other-") == 1

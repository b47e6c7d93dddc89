"""Scoring runs on real music against real-MTAT taggers (rawtag.transfer), on a small folder made here."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf

from rawtag import exercises, transfer
from rawtag.metrics import rank_auc

from conftest import SHARED


def _folder(tmp_path, n=20, seed=0):
    """n one-second files and a reference table: musicnn and vgg probabilities for four MTAT tags."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        name = f"f{i:02d}.wav"
        sf.write(tmp_path / name, np.zeros(1600, np.float32), 16000)
        row = {"file": name, "package": "p", "source_in_package": "s"}
        for tagger in ("musicnn", "vgg"):
            # "electronic" present in the first half, "electro" never; "man" in even files; "piano" never
            row[f"{tagger}:electronic"] = 0.9 if i < n // 2 else 0.05
            row[f"{tagger}:electro"] = 0.01
            row[f"{tagger}:man"] = 0.6 if i % 2 == 0 else 0.1
            row[f"{tagger}:piano"] = float(rng.uniform(0, 0.2))
        rows.append(row)
    with open(tmp_path / transfer.REFERENCE, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t")
        w.writeheader()
        w.writerows(rows)
    return tmp_path


def test_synonyms_map_onto_the_run_vocabulary_by_their_largest_column(tmp_path):
    ref = transfer.read_reference(_folder(tmp_path))
    merged = transfer.merged_probs(ref.probs["musicnn"], ["electro", "male", "piano", "jazz"])
    assert set(merged) == {"electro", "male", "piano"}  # no MTAT column stands for "jazz" here
    np.testing.assert_allclose(merged["electro"], ref.probs["musicnn"]["electronic"])  # max(electro, electronic)
    np.testing.assert_allclose(merged["male"], ref.probs["musicnn"]["man"])
    tags, y, _ = transfer.reference_labels(ref, ["electro", "male", "piano"])
    assert tags == ["electro", "male"]  # piano is never present: not scored
    assert y[:, 0].sum() == 10 and y[:, 1].sum() == 10


def test_score_agrees_with_a_direct_auc_and_ranks_a_perfect_run_at_one(tmp_path):
    ref = transfer.read_reference(_folder(tmp_path))
    vocab = ["male", "electro", "piano"]
    n = len(ref.files)
    perfect = np.zeros((n, 3))
    perfect[:, 0] = ref.probs["musicnn"]["man"]
    perfect[:, 1] = ref.probs["musicnn"]["electronic"]
    s = transfer.score(ref, vocab, perfect, resamples=200)
    assert s.auc.value == pytest.approx(1.0) and s.ceiling.value == pytest.approx(1.0)
    noisy = np.random.default_rng(1).random((n, 3))
    s = transfer.score(ref, vocab, noisy, resamples=200)
    tags, y, _ = transfer.reference_labels(ref, vocab)
    direct = rank_auc(y, noisy[:, [vocab.index(t) for t in tags]])
    assert s.auc.value == pytest.approx(direct.mean())
    assert s.auc.low <= s.auc.value <= s.auc.high
    with pytest.raises(transfer.TransferError, match="shape"):
        transfer.score(ref, vocab, noisy[:, :2])


def test_bad_folders_are_named(tmp_path):
    with pytest.raises(transfer.TransferError, match="no reference.tsv"):
        transfer.read_reference(tmp_path)
    folder = _folder(tmp_path)
    (folder / "f03.wav").unlink()
    with pytest.raises(transfer.TransferError, match="not in"):
        transfer.read_reference(folder)


def test_transfer_exercises(tmp_path):
    ref = transfer.read_reference(_folder(tmp_path))
    vocab = ["male", "electro"]
    probs = np.random.default_rng(2).random((len(ref.files), 2))
    by_threshold = exercises.transfer_by_threshold(ref, vocab, probs, thresholds=(0.3, 0.95))
    assert by_threshold[0.3][0] == 2 and by_threshold[0.95] == (0, by_threshold[0.95][1])
    s = transfer.score(ref, vocab, probs, resamples=50)
    assert by_threshold[0.3][1] == pytest.approx(s.auc.value)
    assert np.isnan(exercises.positives_auc_correlation(s))  # both tags have 10 files: no ranking of counts
    s.positives = np.array([4, 9])
    s.per_tag = {"male": 0.6, "electro": 0.8}
    assert exercises.positives_auc_correlation(s) == pytest.approx(1.0)


@pytest.mark.skipif(not (SHARED / "realmusic" / transfer.REFERENCE).exists(), reason="no shared/realmusic")
def test_the_real_music_ceiling_is_the_published_one():
    ref = transfer.read_reference(SHARED / "realmusic")
    vocab = ["ambient", "beat", "classical", "drum", "electro", "fast", "slow", "string", "techno", "violin",
             "female", "male", "guitar", "synth", "piano"]
    tags, y, ceiling = transfer.reference_labels(ref, vocab)
    assert len(tags) == 10  # the folder's README: 10 tags with >= 5 files with and without
    assert np.nanmean(rank_auc(y, ceiling)) == pytest.approx(0.966, abs=0.0005)


def test_band_pass_keeps_its_band_and_removes_the_rest():
    rate = 12000
    t = np.arange(rate * 2) / rate
    low, high = np.sin(2 * np.pi * 100 * t), np.sin(2 * np.pi * 1000 * t)

    def level(x, tone):  # the amplitude of `tone`'s frequency in x, away from the edges
        middle = slice(rate // 2, -rate // 2)
        return float(np.dot(x[middle], tone[middle]) / np.dot(tone[middle], tone[middle]))

    below = transfer.band_pass(high=200)(low + high, rate)
    above = transfer.band_pass(low=200)(low + high, rate)
    assert below.dtype == np.float32 and below.shape == t.shape
    # a 4th-order filter run both ways falls 48 dB an octave beyond its edge
    assert level(below, low) == pytest.approx(1, abs=0.01) and abs(level(below, high)) < 0.01
    assert level(above, high) == pytest.approx(1, abs=0.01) and abs(level(above, low)) < 0.01
    # forward and backward: no delay, so an onset stays where it was
    click = np.zeros(rate, np.float32)
    click[6000] = 1
    assert int(np.argmax(np.abs(transfer.band_pass(high=2000)(click, rate)))) == 6000


@pytest.mark.parametrize("low,high,message", [(None, None, "a low or a high edge"), (500, 200, "0 < low < high"),
                                              (0, 200, "0 < low < high")])
def test_band_pass_refuses_impossible_edges(low, high, message):
    with pytest.raises(ValueError, match=message):
        transfer.band_pass(low, high)


def test_band_pass_refuses_an_edge_above_nyquist():
    with pytest.raises(ValueError, match="Nyquist"):
        transfer.band_pass(high=7000)(np.zeros(100, np.float32), 12000)


def test_paired_change_is_the_difference_of_the_two_macro_aucs(tmp_path):
    ref = transfer.read_reference(_folder(tmp_path))
    vocabulary = ["electro", "male", "piano"]
    rng = np.random.default_rng(1)
    a, b = rng.random((20, 3)), rng.random((20, 3))
    change = transfer.paired_change(ref, vocabulary, a, b, resamples=200)
    expected = transfer.score(ref, vocabulary, a).auc.value - transfer.score(ref, vocabulary, b).auc.value
    assert change.value == pytest.approx(expected)
    assert change.low <= change.value <= change.high
    same = transfer.paired_change(ref, vocabulary, a, a, resamples=200)
    assert same.value == same.low == same.high == 0

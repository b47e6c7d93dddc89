"""rawtag.learned (what a trained network learned, measured) and its figures in rawtag.plots, on tiny known
inputs: a windowed cosine is a band-pass filter at a known frequency, a sine has its energy at a known bin."""
from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.container import BarContainer

from rawtag import learned, plots
from rawtag.models import build_model

matplotlib.use("Agg")
FS = 12_000


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def bandpass(freq, taps=256):
    n = np.arange(taps)
    return np.hanning(taps) * np.cos(2 * np.pi * freq * n / FS)


def tone(freq, seconds=2.0, amplitude=0.5):
    return amplitude * np.sin(2 * np.pi * freq * np.arange(int(seconds * FS)) / FS)


def history(valid_losses, train_losses=None, aucs=None):
    n = len(valid_losses)
    train_losses = train_losses or list(np.linspace(0.7, 0.3, n))
    aucs = aucs or list(np.linspace(0.6, 0.8, n))
    return {"epochs": [{"epoch": i + 1, "train_loss": t, "valid_loss": v, "valid_roc_auc": a}
                       for i, (t, v, a) in enumerate(zip(train_losses, valid_losses, aucs, strict=True))]}


def test_filter_gain_peaks_at_the_filters_frequency_and_is_one_there():
    freqs, gain = learned.filter_gain(bandpass(1000).reshape(1, 1, -1), FS)
    assert gain.shape == (1, learned.N_FFT // 2 + 1) and len(freqs) == gain.shape[1]
    assert gain.max() == pytest.approx(1.0)
    assert abs(freqs[gain[0].argmax()] - 1000) < 2 * FS / learned.N_FFT


def test_passband_brackets_the_peak_and_is_about_fs_over_taps_wide():
    freqs, gain = learned.filter_gain(bandpass(1000), FS)
    lo, peak, hi = learned.passband(freqs, gain[0])
    assert lo < peak < hi and abs(peak - 1000) < 5
    assert 0.5 * FS / 256 < hi - lo < 3 * FS / 256  # a Hann window of L taps: about 1.4 f_s / L at -3 dB
    lo6, _, hi6 = learned.passband(freqs, gain[0], drop_db=6)
    assert lo6 < lo and hi6 > hi


def test_clip_spectra_find_a_sines_frequency_and_ignore_an_offset():
    x = (tone(500) * 32767).astype(np.int16) + np.int16(3000)  # a sine on a constant offset
    power = learned.clip_spectra(x[None], frames=None)
    freqs = np.fft.rfftfreq(learned.N_FFT, 1 / FS)
    assert abs(freqs[power[0].argmax()] - 500) < 2 * FS / learned.N_FFT
    assert power[0, 0] < 1e-6 * power[0].max()  # the offset is not energy at 0 Hz
    assert learned.clip_spectra(x[None], frames=2).shape == power.shape
    with pytest.raises(ValueError, match="shorter than one frame"):
        learned.clip_spectra(np.zeros((1, 100)))
    three = np.stack([(tone(f) * 32767).astype(np.int16) for f in (200, 700, 1500)])
    np.testing.assert_allclose(learned.clip_spectra(three, frames=4, rows=[2, 0]),
                               learned.clip_spectra(three, frames=4)[[2, 0]])


def test_passed_share_and_band_share():
    freqs, gain = learned.filter_gain(bandpass(1000), FS)
    at = np.zeros_like(freqs)
    at[gain[0].argmax()] = 1.0  # all the energy at the filter's peak
    far = np.zeros_like(freqs)
    far[np.searchsorted(freqs, 4000)] = 1.0
    shares = learned.passed_share(np.stack([at, far, at + far]), gain[0])
    assert shares[0] == pytest.approx(1.0) and shares[1] < 1e-4 and shares[2] == pytest.approx(0.5, abs=1e-4)
    with pytest.raises(ValueError, match="same n_fft"):
        learned.passed_share(at[:-1], gain[0])
    power = np.ones_like(freqs)
    low, high = learned.band_share(freqs, power, 0, 3000), learned.band_share(freqs, power, 3000.1, FS)
    assert low + high == pytest.approx(1.0) and low == pytest.approx(0.5, abs=0.01)


def test_average_spectrum_reads_a_prepared_sets_split():
    class Data:  # the part of a PreparedSet it reads
        sample_rate = FS
        clips = np.stack([(tone(f, 1.0) * 32767).astype(np.int16) for f in (300, 300, 2000)])

        def rows(self, split):
            return np.array([0, 1]) if split == "train" else np.array([2])

    freqs, power = learned.average_spectrum(Data(), "train")
    assert abs(freqs[power.argmax()] - 300) < 3
    freqs, power = learned.average_spectrum(Data(), "valid")
    assert abs(freqs[power.argmax()] - 2000) < 3


def test_tag_shares_average_over_each_tags_clips():
    labels = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0]])
    shares = learned.tag_shares(labels, np.array([0.2, 0.4, 0.9]), ["a", "b", "c"])
    assert shares["a"] == pytest.approx(0.3) and shares["b"] == pytest.approx(0.65) and np.isnan(shares["c"])
    with pytest.raises(ValueError, match="label rows"):
        learned.tag_shares(labels, np.zeros(2))


def test_filtered_audio_is_the_layers_correlation_and_passes_the_band():
    rng = np.random.default_rng(0)
    w, x = rng.standard_normal(7), rng.standard_normal(50)
    y = learned.filtered_audio(w, x, level="peak")
    direct = np.correlate(x, w, "full")[len(w) - 1:][:50]  # y[n] = sum_k w[k] x[n + k], as Conv1d computes
    direct *= 0.9 / np.abs(direct).max()
    np.testing.assert_allclose(y, direct, atol=1e-5)
    mix = tone(100) + tone(3000)
    out = learned.filtered_audio(bandpass(100), mix)
    assert len(out) == len(mix) and np.sqrt(np.mean(out ** 2)) == pytest.approx(np.sqrt(np.mean(mix ** 2)), rel=0.01)
    spectrum = np.abs(np.fft.rfft(out[: len(mix) - 256]))  # the tail runs off the end of the clip
    f = np.fft.rfftfreq(len(mix) - 256, 1 / FS)
    assert spectrum[np.argmin(abs(f - 100))] > 100 * spectrum[np.argmin(abs(f - 3000))]
    assert learned.filtered_audio(w, (x * 10000).astype(np.int16)).dtype == np.float32
    with pytest.raises(ValueError, match="unknown level"):
        learned.filtered_audio(w, x, level="loud")


def test_feature_maps_walk_every_stage_of_one_clip():
    torch.manual_seed(0)
    model = build_model("base", length=256, stride=256, n_tags=5)
    x = torch.randn(1, 10, 1, 34950)
    maps = learned.feature_maps(model, x, subclip=3)
    names = [name for name, _, _ in model.stages(x)]
    assert [m["name"] for m in maps] == names
    np.testing.assert_allclose(maps[0]["values"].ravel(), x[0, 3, 0].numpy())
    assert maps[1]["shape"] == (10, 1, 136) and maps[1]["values"].shape == (1, 136)
    assert maps[3]["values"].shape == (32, 116)
    np.testing.assert_allclose(maps[1]["values"], np.maximum(maps[1]["before_relu"], 0), atol=1e-6)
    assert maps[1]["before_relu"].min() < 0 and maps[3]["before_relu"] is None
    with torch.no_grad():
        np.testing.assert_allclose(maps[-1]["values"], model(x)[0].numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="one clip"):
        learned.feature_maps(model, torch.randn(2, 10, 1, 34950))
    assert model.training  # put back in the mode it came in


def test_train_valid_gap_finds_the_minimum_and_the_rise():
    gap = learned.train_valid_gap(history([0.6, 0.5, 0.4, 0.45, 0.5], aucs=[0.6, 0.7, 0.75, 0.72, 0.7]))
    assert gap["min_valid_epoch"] == 3 and gap["valid_rise"] == pytest.approx(0.1)
    assert gap["gap"] == pytest.approx(0.5 - 0.3) and gap["epochs"] == 5
    assert gap["best_auc_epoch"] == 3 and gap["auc_drop"] == pytest.approx(0.05)
    still = learned.train_valid_gap(history([0.6, 0.5, 0.4]))
    assert still["min_valid_epoch"] == 3 and still["valid_rise"] == 0
    with pytest.raises(ValueError, match="no epoch"):
        learned.train_valid_gap({"epochs": []})


def test_rank_correlation_and_its_interval():
    x = np.arange(10.0)
    rho, lo, hi = learned.rank_correlation(x, x ** 3)
    assert rho == pytest.approx(1.0) and lo == pytest.approx(1.0)
    rho, lo, hi = learned.rank_correlation(x, -x)
    assert rho == pytest.approx(-1.0)
    rng = np.random.default_rng(1)
    noisy = x + rng.normal(0, 3, 10)
    rho, lo, hi = learned.rank_correlation(x, noisy)
    assert lo <= rho <= hi and hi - lo > 0.1
    assert np.isnan(learned.rank_correlation([1, 2], [3, 4])[0])
    assert np.isnan(learned.rank_correlation([1, 2, np.nan], [3, 4, 5])[0])  # NaN pairs dropped: 2 left


def test_filter_spectrum_bars_add_up_to_the_passed_share():
    freqs = np.fft.rfftfreq(learned.N_FFT, 1 / FS)
    power = 1 / (1 + freqs)  # more energy at low frequencies, as music has
    w = bandpass(200)
    fig = plots.filter_spectrum({"base 256/256": w}, FS, freqs, power, "t")
    right = fig.axes[1]
    data_bars, passed_bars = [c for c in right.containers if isinstance(c, BarContainer)]
    assert sum(b.get_height() for b in data_bars) == pytest.approx(1.0)
    gain = learned.filter_gain(w, FS)[1][0]
    assert sum(b.get_height() for b in passed_bars) == pytest.approx(learned.passed_share(power, gain))
    assert "-3 dB band" in " ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    five = plots.filter_spectrum({(256, 256): w, (512, 512): bandpass(100, 512)}, FS, freqs, power, "t")
    assert len([c for c in five.axes[1].containers if isinstance(c, BarContainer)]) == 3
    with pytest.raises(ValueError, match="needs a longer one"):
        plots.filter_spectrum({"long": np.ones(8192)}, FS, freqs, power, "t")


def test_feature_maps_figure_has_a_panel_per_stage_with_its_shape():
    torch.manual_seed(0)
    model = build_model("base", length=256, stride=256, n_tags=5)
    maps = learned.feature_maps(model, torch.randn(1, 10, 1, 34950))
    fig = plots.feature_maps(maps, FS, 256, "t")
    panels = [ax for ax in fig.axes if ax.get_title(loc="left")]
    kept = [m for m in maps if not m["name"].startswith(("reshape", "dropout"))]
    assert len(panels) == len(kept)
    assert panels[1].get_title(loc="left").endswith("[10, 1, 136]")
    assert len(panels[3].images) == 1 and panels[3].images[0].get_array().shape == (32, 116)
    assert [line.get_label() for line in panels[1].lines] == ["before the ReLU", "output (after the ReLU)"]


def test_train_valid_curves_marks_the_lowest_validation_loss():
    fig = plots.train_valid_curves(history([0.6, 0.5, 0.4, 0.45, 0.5]), "t")
    left, right = fig.axes
    assert len(left.lines) == 3 and len(right.lines) == 2
    labels = [t.get_text() for t in left.get_legend().get_texts()]
    assert "lowest validation loss: epoch 3" in labels
    np.testing.assert_allclose(left.lines[1].get_ydata(), [0.6, 0.5, 0.4, 0.45, 0.5])


def test_auc_vs_share_greys_the_tags_with_few_positives():
    shares, aucs = {"a": 0.1, "b": 0.5, "c": 0.9, "d": np.nan}, {"a": 0.6, "b": 0.7, "c": 0.9, "d": 0.5}
    fig = plots.auc_vs_share(shares, aucs, "t", positives={"a": 10, "b": 2, "c": 10, "d": 10},
                             rho=(0.5, -0.2, 0.9))
    ax = fig.axes[0]
    reliable, few = ax.collections
    assert len(reliable.get_offsets()) == 2 and len(few.get_offsets()) == 1
    assert "Spearman rho +0.50 [-0.20, +0.90]" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert sorted(t.get_text() for t in ax.texts) == ["a", "b", "c"]

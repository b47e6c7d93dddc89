"""Chapter 07's models: shapes, parameter counts by hand, the segment cut, and the log-mel front end."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rawtag.models import build_model, count_parameters, describe
from rawtag.models.beyond import SAMPLE_WIDTHS, SEGMENT, segments


def test_clips_are_cut_into_whole_59049_sample_segments():
    x = torch.arange(2 * 349500, dtype=torch.float32).reshape(2, 10, 1, 34950)
    seg, n = segments(x)
    assert n == 5 and seg.shape == (10, 1, SEGMENT)
    assert seg[5, 0, 0] == 349500  # the second clip's first segment starts at its first sample
    assert seg[1, 0, 0] == SEGMENT


def _conv_bn(cin, cout, k):
    return cin * cout * k + cout + 2 * cout  # weights, bias, batch-norm scale and shift


def test_samplecnn_is_lee_et_al_3_9_model():
    model = build_model("samplecnn", n_tags=50)
    expected = _conv_bn(1, 128, 3)
    cin = 128
    for cout in SAMPLE_WIDTHS:
        expected += _conv_bn(cin, cout, 3)
        cin = cout
    expected += _conv_bn(512, 512, 1) + 512 * 50 + 50
    assert count_parameters(model) == expected
    rows = describe(model, (2, 10, 1, 34950), file=open("/dev/null", "w"))
    shapes = {name: shape for name, shape, _ in rows}
    assert shapes["conv 3 / stride 3, 128"] == (10, 128, 19683)
    assert shapes["basic block 9 + max-pool 3"] == (10, 512, 1), "nine pools of 3 leave one step"
    assert rows[-1][1] == (2, 50)


@pytest.mark.parametrize("name", ["se", "rese"])
def test_se_and_rese_aggregate_the_last_three_blocks(name):
    model = build_model(name, n_tags=7, amplify=2)
    rows = describe(model, (1, 10, 1, 34950), file=open("/dev/null", "w"))
    shapes = {n: s for n, s, _ in rows}
    assert shapes["multi-level aggregation"] == (5, 256 + 256 + 512)
    assert rows[-1][1] == (1, 7)
    se = model.blocks[0].body[-1]
    assert [m.out_features for m in se.excite if isinstance(m, torch.nn.Linear)] == [256, 128], "expand by 2"
    if name == "rese":
        assert isinstance(model.blocks[2].skip, torch.nn.Conv1d) and isinstance(model.blocks[0].skip, torch.nn.Identity)


def test_melcnn_front_end_is_a_log_mel_spectrogram():
    import librosa

    model = build_model("melcnn", length=512, stride=256, n_mels=40)
    t = np.arange(34950) / 12000
    tone = torch.from_numpy(np.sin(2 * np.pi * 1000 * t).astype(np.float32)).reshape(1, 1, -1)
    mel = model.frames(tone)[0].numpy()
    assert mel.shape == (40, (34950 - 512) // 256 + 1)
    reference = librosa.feature.melspectrogram(y=tone[0, 0].numpy(), sr=12000, n_fft=512, hop_length=256,
                                               n_mels=40, center=False, window="hann", fmax=6000, power=2.0)
    np.testing.assert_allclose(mel, np.log1p(10_000 * reference), rtol=2e-3, atol=2e-3)
    centers = librosa.mel_frequencies(42, fmax=6000)[1:-1]
    assert abs(centers[mel.mean(axis=1).argmax()] - 1000) < 150, "the 1 kHz tone lands in the 1 kHz band"
    out = model(torch.zeros(2, 10, 1, 34950))
    assert out.shape == (2, 50)
    assert count_parameters(model) == count_parameters(build_model("base", length=512, stride=256)) - (
        512 + 1) - (1 * 32 * 8) + (40 * 32 * 8), "the base CNN with the strided conv swapped for 40 mel bands"


def test_new_models_train_one_step():
    for name, params in (("samplecnn", {}), ("rese", {"amplify": 1}), ("melcnn", {})):
        model = build_model(name, n_tags=5, **params)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(torch.randn(2, 10, 1, 34950) * 0.1),
                                                                    torch.ones(2, 5))
        loss.backward()
        opt.step()
        assert torch.isfinite(loss)


@pytest.mark.parametrize("name", ["se", "rese"])
def test_se_and_rese_parameter_counts_by_hand(name):
    a, k = 4, 50
    model = build_model(name, n_tags=k, amplify=a)
    se = lambda c: c * c * a + c * a + c * a * c + c  # noqa: E731  (two FC layers with biases)
    expected, cin = _conv_bn(1, 128, 3), 128
    for cout in SAMPLE_WIDTHS:
        if name == "se":
            expected += _conv_bn(cin, cout, 3) + se(cout)
        else:
            expected += _conv_bn(cin, cout, 3) + _conv_bn(cout, cout, 3) + se(cout)
            expected += cin * cout + cout if cin != cout else 0  # the 1x1 skip convolution
        cin = cout
    expected += (256 + 256 + 512) * 512 + 512 + 2 * 512 + 512 * k + k
    assert count_parameters(model) == expected

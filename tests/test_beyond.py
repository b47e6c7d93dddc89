"""Chapter 07's models: parameter counts by hand (Kim et al.'s code), the segment protocol (one
seeded random segment per clip in training, mean probability over evenly spaced segments in evaluation),
native sample rates, and the log-mel front end."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from rawtag.data import audio
from rawtag.data.batches import Batches
from rawtag.data.prepare import PreparedSet, prepare
from rawtag.models import build_model, count_parameters, describe
from rawtag.models.beyond import SAMPLE_WIDTHS, SEGMENT, mean_probability_logit, segment_starts
from rawtag.runs import Run

from conftest import tone_source

QUIET = io.StringIO()


def _conv_bn(cin, cout, k):
    return cin * cout * k + cout + 2 * cout  # weights, bias, batch-norm scale and shift


def _se(c, a):
    return c * c * a + c * a + c * a * c + c  # FC C -> aC and FC aC -> C, with biases


def test_samplecnn_is_lee_et_al_3_9_model():
    model = build_model("samplecnn", n_tags=50)
    expected, cin = _conv_bn(1, 128, 3), 128
    for cout in SAMPLE_WIDTHS:
        expected += _conv_bn(cin, cout, 3)
        cin = cout
    expected += _conv_bn(512, 512, 1) + 512 * 50 + 50
    assert count_parameters(model) == expected == 1_869_874
    rows = describe(model, (2, 1, SEGMENT), file=QUIET)
    shapes = {name: shape for name, shape, _ in rows}
    assert shapes["conv 3 / stride 3, 128"] == (2, 128, 19683)
    assert shapes["basic block 9"] == (2, 512, 1), "nine pools of 3 leave one step"
    assert rows[-1][1] == (2, 50)


@pytest.mark.parametrize("name,published", [("se", 24_742_706), ("rese", 26_980_146)])
def test_se_and_rese_parameter_counts_are_kim_et_al(name, published):
    """Kim et al.'s choices: SE (expansion 16) after the block's pool, BN on the ReSE 1x1 shortcut, and a
    head as wide as the concatenated last three blocks (256 + 256 + 512 = 1,024)."""
    a, k = 16, 50
    expected, cin = _conv_bn(1, 128, 3), 128
    for cout in SAMPLE_WIDTHS:
        if name == "se":
            expected += _conv_bn(cin, cout, 3) + _se(cout, a)
        else:
            expected += _conv_bn(cin, cout, 3) + _conv_bn(cout, cout, 3) + _se(cout, a)
            expected += _conv_bn(cin, cout, 1) if cin != cout else 0  # the 1x1 shortcut with batch norm
        cin = cout
    f = 256 + 256 + 512
    expected += f * f + f + 2 * f + f * k + k
    assert count_parameters(build_model(name, n_tags=k)) == expected == published


def test_se_excites_after_the_pool_and_rese_shortcut_has_batch_norm():
    se = build_model("se", n_tags=7, amplify=2)
    block = se.blocks[0]
    seen = []
    for module in (block.pool, block.excite):
        module.register_forward_hook(lambda m, i, o: seen.append((type(m).__name__, o.shape[-1])))
    block(torch.randn(1, 128, 81))
    assert seen == [("MaxPool1d", 27), ("SqueezeExcite", 27)], "SE reads the pooled output"
    assert [m.out_features for m in block.excite.excite if isinstance(m, torch.nn.Linear)] == [256, 128]
    rese = build_model("rese", n_tags=7, amplify=2)
    assert isinstance(rese.blocks[2].skip[0], torch.nn.Conv1d) and isinstance(rese.blocks[2].skip[1],
                                                                               torch.nn.BatchNorm1d)
    assert isinstance(rese.blocks[0].skip, torch.nn.Identity)
    rows = describe(rese, (1, 1, SEGMENT), file=QUIET)
    assert dict((n, s) for n, s, _ in rows)["multi-level aggregation"] == (1, 1024)


def test_evaluation_segments_cover_the_clip_evenly():
    n = audio.clip_samples(22050)
    starts = segment_starts(n)
    assert len(starts) == 11 and starts[0] == 0 and starts[-1] + SEGMENT == n
    assert np.ptp(np.diff(starts)) <= 1, "evenly spaced"
    assert segment_starts(n, "logit_mean").tolist() == [i * SEGMENT for i in range(10)], "whole consecutive ones"
    with pytest.raises(ValueError, match="shorter than one segment"):
        segment_starts(SEGMENT - 1)


def test_evaluation_averages_probabilities_not_logits():
    torch.manual_seed(0)
    model = build_model("samplecnn", n_tags=4).eval()
    with torch.no_grad():  # untrained, the logits barely depend on the input: spread them over a few units
        model.head[-1].weight.mul_(30)
    # three segments at very different levels, so that their logits differ
    x = torch.randn(2, 1, 3 * SEGMENT) * torch.tensor([0.01, 1.0, 100.0]).repeat_interleave(SEGMENT)
    with torch.no_grad():
        per_segment = torch.stack([model(x[..., s:s + SEGMENT]) for s in segment_starts(3 * SEGMENT)], dim=1)
        clip = model(x)
    p = torch.sigmoid(per_segment).mean(dim=1)
    torch.testing.assert_close(torch.sigmoid(clip), p, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(clip, per_segment.mean(dim=1), atol=1e-4), "the logit mean is another rule"
    far = torch.tensor([[[40.0], [-40.0]]])  # the log-space form stays finite where logit(mean(p)) would not
    assert torch.isfinite(mean_probability_logit(far)).all()
    variant = build_model("samplecnn", n_tags=4, protocol="logit_mean").eval()
    variant.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(variant(x), per_segment.mean(dim=1), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def prepared_22k(tmp_path_factory):
    src = tone_source(tmp_path_factory.mktemp("tones22k"), clips=24, seconds=29.1)
    return PreparedSet(prepare(src, tmp_path_factory.mktemp("p22k") / "set", top_k=4, workers=2,
                               sample_rate=22050, progress=False))


def test_22050_hz_set_has_mtat_clips_of_641655_samples(prepared_22k):
    assert prepared_22k.sample_rate == 22050
    assert prepared_22k.clips.shape[1] == audio.clip_samples(22050) == 641_655
    assert prepared_22k.manifest["params"]["sample_rate"] == 22050
    with pytest.raises(ValueError, match="use a set prepared at 12,000 Hz"):
        Batches(prepared_22k, "train")  # the paper's sub-clip layout needs 12 kHz clips


def test_training_draws_one_seeded_segment_per_clip(prepared_22k):
    def epoch(seed, e):
        b = Batches(prepared_22k, "train", batch_size=4, shuffle=True, seed=seed, layout="waveform", crop=SEGMENT,
                    prefetch=0)
        b.set_epoch(e)
        return [batch for batch in b], b.crop_starts(len(b.rows))

    first, starts = epoch(7, 0)
    again, same = epoch(7, 0)  # a resumed run rebuilds the pipeline: the same segments
    assert all(a.x.shape[1:] == (1, SEGMENT) for a in first)
    np.testing.assert_array_equal(starts, same)
    for a, b in zip(first, again, strict=True):
        torch.testing.assert_close(a.x, b.x, rtol=0, atol=0)
    _, next_epoch = epoch(7, 1)
    _, other_seed = epoch(8, 0)
    assert not np.array_equal(starts, next_epoch) and not np.array_equal(starts, other_seed)
    assert starts.min() >= 0 and starts.max() <= 641_655 - SEGMENT
    # each row is the clip's samples from its start: check one against the memmap
    b = Batches(prepared_22k, "train", batch_size=4, shuffle=True, seed=7, layout="waveform", crop=SEGMENT,
                normalization="raw", prefetch=0)
    batch = next(iter(b))
    row, start = batch.rows[0], b.crop_starts(len(b.rows))[0]
    expected = torch.from_numpy(prepared_22k.clips[row, start:start + SEGMENT].astype(np.float32))
    torch.testing.assert_close(batch.x[0, 0], expected)


def test_models_refuse_a_set_at_another_rate(prepared_22k, tone_prepared, tmp_path):
    from rawtag.train import TrainConfig, fit

    with pytest.raises(ValueError, match="expects 22,050 Hz audio but .* is at 12,000 Hz"):
        fit(tone_prepared, tmp_path / "a", TrainConfig(model="samplecnn", epochs=1), progress=False)
    with pytest.raises(ValueError, match="12,000 Hz"):
        fit(prepared_22k, tmp_path / "b", TrainConfig(model="base", epochs=1), progress=False)


@pytest.mark.slow
def test_samplecnn_trains_and_tags_at_its_rate(prepared_22k, tmp_path):
    import soundfile as sf

    from rawtag.inference import load_run, tag_audio
    from rawtag.train import TrainConfig, fit

    fit(prepared_22k, tmp_path / "r", TrainConfig(model="samplecnn", epochs=1, max_train_clips=8,
                                                  model_params={"widths": (8,) * 9}), progress=False)
    run = Run(tmp_path / "r")
    assert np.isfinite(run.history["epochs"][0]["train_loss"])
    assert run.logits().shape == (len(prepared_22k.rows("valid")), 4), "one row of logits per whole clip"
    model, config = load_run(tmp_path / "r")
    assert config["sample_rate"] == 22050
    t = np.arange(44100 * 3) / 44100
    sf.write(tmp_path / "x.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 44100)
    tags = tag_audio(tmp_path / "x.wav", model, config)
    assert len(tags) == 4 and all(0 <= p <= 1 for p in tags.values())


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

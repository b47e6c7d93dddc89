"""Training: it learns, it resumes exactly, its files, evaluation, tagging and the CLI's errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from rawtag.__main__ import main
from rawtag.data.prepare import PreparedSet
from rawtag.inference import evaluate, load_run, split_logits, tag_audio
from rawtag.metrics import tag_scores
from rawtag.train import TrainConfig, fit
from rawtag.transfer import band_pass


@pytest.mark.slow
def test_loss_falls_and_auc_beats_chance(tone_prepared, tmp_path):
    results = fit(tone_prepared, tmp_path / "run", TrainConfig(model="base", epochs=8, lr=1e-2, log_every=5),
                  progress=False)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    losses = [e["train_loss"] for e in history["epochs"]]
    assert losses[-1] < 0.8 * losses[0]
    assert results["test"]["roc_auc"] > 0.75 and results["valid"]["roc_auc"] > 0.6
    assert len(history["iterations"]) >= 8 and history["iterations"][0]["iteration"] == 5
    predictions = np.load(tmp_path / "run" / "predictions.npz")
    assert predictions["valid_logits"].shape == predictions["valid_labels"].shape


@pytest.mark.slow
def test_resumed_equals_uninterrupted(tone_prepared, tmp_path):
    def cfg(epochs):
        return TrainConfig(model="improved", model_params={"length": 1024, "stride": 1024}, epochs=epochs,
                           max_train_clips=12, max_eval_clips=8, lr_patience=0, lr_factor=0.2, log_every=1)

    whole = fit(tone_prepared, tmp_path / "whole", cfg(3), progress=False)
    fit(tone_prepared, tmp_path / "split", cfg(1), progress=False)  # "interrupted" after epoch 1
    resumed = fit(tone_prepared, tmp_path / "split", cfg(3), progress=False)
    a = torch.load(tmp_path / "whole" / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "checkpoints" / "last.pt", weights_only=True)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    def strip(h):  # timings differ from run to run
        return [{k: v for k, v in e.items() if "seconds" not in k and "per_s" not in k} for e in h]

    assert strip(a["history"]["epochs"]) == strip(b["history"]["epochs"])
    assert a["history"]["iterations"] == b["history"]["iterations"]
    assert whole["valid"] == resumed["valid"] and whole["test"] == resumed["test"]


@pytest.mark.slow
def test_rerun_of_a_finished_run_returns_its_results(tone_prepared, tmp_path):
    cfg = TrainConfig(epochs=1, max_train_clips=8)
    first = fit(tone_prepared, tmp_path / "r", cfg, progress=False)
    assert fit(tone_prepared, tmp_path / "r", cfg, progress=False) == first
    with pytest.raises(ValueError, match="other settings"):
        fit(tone_prepared, tmp_path / "r", TrainConfig(epochs=1, lr=0.5), progress=False)


@pytest.mark.slow
def test_evaluate_and_tag(tone_prepared, tmp_path):
    fit(tone_prepared, tmp_path / "r", TrainConfig(epochs=2, lr=1e-2, max_train_clips=32), progress=False)
    scores = evaluate(tmp_path / "r", "test", progress=False)
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert scores.roc_auc == pytest.approx(results["test"]["roc_auc"], abs=1e-6)
    model, config = load_run(tmp_path / "r")
    for name, rate, seconds, channels in [("a.wav", 44100, 3.0, 2), ("b.flac", 8000, 70.0, 1),
                                          ("c.ogg", 22050, 1.0, 1)]:
        t = np.arange(int(rate * seconds)) / rate
        x = np.sin(2 * np.pi * 440 * t) * 0.3
        sf.write(tmp_path / name, np.stack([x] * channels, 1).astype(np.float32), rate)
        probs = tag_audio(tmp_path / name, model, config)
        assert list(probs) != [] and set(probs) == set(config["tags"])
        assert all(0 <= p <= 1 for p in probs.values())
    # an effect is applied to the decoded signal before tagging: silencing the tone tags it as silence
    sf.write(tmp_path / "silence.wav", np.zeros(16000, np.float32), 16000)
    seen = []

    def silence(signal, rate):
        seen.append(rate)
        return np.zeros_like(signal)

    assert tag_audio(tmp_path / "a.wav", model, config, silence) == tag_audio(tmp_path / "silence.wav", model, config)
    assert seen == [config["sample_rate"]]
    assert tag_audio(tmp_path / "a.wav", model, config, silence) != tag_audio(tmp_path / "a.wav", model, config)
    # split_logits scores a split as evaluate does (the same normalization and clips) ...
    prepared = PreparedSet(tone_prepared)
    logits, labels = split_logits(model, config, prepared, "test")
    assert tag_scores(labels, logits).roc_auc == pytest.approx(scores.roc_auc, abs=1e-6)
    # ... and through an effect: a filter that removes the tones' band changes the logits
    filtered, _ = split_logits(model, config, prepared, "test", band_pass(low=5000))
    assert filtered.shape == logits.shape and not np.allclose(filtered, logits, atol=1e-3)


@pytest.mark.parametrize("args,message", [
    (["--model", "base", "--length", "256", "--stride", "512"], "stride 512 is larger than length 256"),
    (["--model", "base", "--length", "40000", "--stride", "40000"], "longer than a sub-clip"),
])
def test_train_cli_refuses_impossible_geometry(tone_prepared, tmp_path, capsys, args, message):
    """Arguments that parse, but make no model: `rawtag train` returns 2 with the reason, and trains nothing."""
    run = tmp_path / "r"
    assert main(["train", "--data", str(tone_prepared), "--out", str(run), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (run / "checkpoints" / "last.pt").exists() and not (run / "results.json").exists()


@pytest.mark.parametrize("args,message", [
    (["--model", "nope"], "invalid choice: 'nope'"),
    (["--epochs", "0"], "must be at least 1"),
])
def test_train_cli_rejects_bad_arguments(tone_prepared, tmp_path, capsys, args, message):
    """Arguments the parser refuses: argparse exits with status 2 and the reason, before any run folder."""
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--data", str(tone_prepared), "--out", str(tmp_path / "r"), *args])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_train_cli_unprepared_data(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "not a prepared data folder" in capsys.readouterr().err


@pytest.mark.slow
def test_train_evaluate_tag_cli(tone_prepared, tmp_path, capsys):
    run = str(tmp_path / "r")
    assert main(["train", "--data", str(tone_prepared), "--out", run, "--profile", "smoke", "--lr", "0.01"]) == 0
    assert "valid ROC-AUC" in capsys.readouterr().out
    assert main(["evaluate", "--run", run, "--split", "test"]) == 0
    assert "test: macro ROC-AUC" in capsys.readouterr().out
    sf.write(tmp_path / "x.wav", np.zeros(1000, np.float32), 16000)
    assert main(["tag", str(tmp_path / "x.wav"), "--run", run, "--top", "2"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    (tmp_path / "bad.mp3").write_bytes(b"nope" * 100)
    assert main(["tag", str(tmp_path / "bad.mp3"), str(tmp_path / "x.wav"), "--run", run]) == 2
    captured = capsys.readouterr()
    assert "bad.mp3: cannot decode" in captured.err and "1 of 2 file(s) could not be read" in captured.err
    assert captured.out.startswith(str(tmp_path / "x.wav")), "the readable file is still tagged"


@pytest.mark.slow
def test_results_hold_last_and_best_epoch_validation(tone_prepared, tmp_path):
    fit(tone_prepared, tmp_path / "r", TrainConfig(epochs=3, lr=1e-2, max_train_clips=16), progress=False)
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    epochs = json.loads((tmp_path / "r" / "history.json").read_text())["epochs"]
    aucs = [e["valid_roc_auc"] for e in epochs]
    assert results["valid_last_epoch"] == {"epoch": 3, "roc_auc": aucs[-1], "pr_auc": epochs[-1]["valid_pr_auc"]}
    assert results["best_epoch"] == 1 + int(np.argmax(aucs))
    assert results["valid"]["roc_auc"] == pytest.approx(max(aucs), abs=1e-9)  # the best model, re-scored


@pytest.mark.slow
def test_bf16_precision_is_recorded_and_trains(tone_prepared, tmp_path, monkeypatch):
    import warnings

    from rawtag import train

    for native in (True, False):  # a CPU with bfloat16 hardware trains quietly; one without is warned
        monkeypatch.setattr(train, "bf16_is_native", lambda device, native=native: native)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results = fit(tone_prepared, tmp_path / f"r{native}", TrainConfig(epochs=1, lr=1e-2, max_train_clips=8,
                                                                             precision="bf16"), progress=False)
        slow = [w for w in caught if "bfloat16 is emulated" in str(w.message)]
        assert len(slow) == (0 if native else 1)
    assert "use precision='fp32'" in str(slow[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # float32 never warns
        fit(tone_prepared, tmp_path / "fp32", TrainConfig(epochs=1, max_train_clips=8), progress=False)
    results = json.loads((tmp_path / "rFalse" / "results.json").read_text())
    config = json.loads((tmp_path / "rFalse" / "config.json").read_text())
    assert config["train"]["precision"] == "bf16" and results["precision"] == "bf16"
    assert np.isfinite(results["valid"]["roc_auc"])
    with pytest.raises(ValueError, match="unknown precision 'fp8'; choose one of fp32, bf16"):
        TrainConfig(precision="fp8").resolved()

"""Two CPU processes on the gloo backend, started by torchrun, train the same run as one process would: the
base CNN from the command line, and the improved CNN (batch norm) on batches that split unevenly."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rawtag.data.batches import Batches
from rawtag.data.prepare import PreparedSet

ARGS = ["--model", "base", "--length", "1024", "--stride", "1024", "--epochs", "2", "--max-train-clips", "40",
        "--profile", "smoke", "--device", "cpu"]


def test_shards_split_every_batch_and_keep_every_evaluation_clip(tone_prepared):
    data = PreparedSet(tone_prepared)
    one = Batches(data, "train", batch_size=10, shuffle=True, max_clips=41, prefetch=0)
    halves = [Batches(data, "train", batch_size=10, shuffle=True, max_clips=41, prefetch=0, shard=(r, 2))
              for r in range(2)]
    whole = [b.rows for b in one]
    parts = [[b.rows for b in h] for h in halves]
    assert len(parts[0]) == len(parts[1]) == 4, "the 1-clip final batch is dropped: equal steps per process"
    for i in range(4):
        assert sorted(np.concatenate([parts[0][i], parts[1][i]])) == sorted(whole[i])
    evaluation = [Batches(data, "test", batch_size=10, prefetch=0, shard=(r, 2)) for r in range(2)]
    seen = np.concatenate([b.rows for e in evaluation for b in e])
    assert sorted(seen) == sorted(data.rows("test")), "evaluation keeps every clip"
    with pytest.raises(ValueError, match="shard 2 of 2"):
        Batches(data, "train", shard=(2, 2))


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tone_prepared, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    subprocess.run([sys.executable, "-m", "rawtag", "train", "--data", str(tone_prepared), *ARGS, "--out",
                    str(single)], check=True, env=env, capture_output=True)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "rawtag", "train", "--data", str(tone_prepared), *ARGS, "--out", str(ddp)],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("best epoch") == 1, "only rank 0 reports"
    a, b = (json.loads((d / "results.json").read_text()) for d in (single, ddp))
    assert a.keys() == b.keys()
    for split in ("valid", "test"):
        assert b[split]["clips"] == a[split]["clips"]
        assert b[split]["roc_auc"] == pytest.approx(a[split]["roc_auc"], abs=1e-3)
    ha, hb = (json.loads((d / "history.json").read_text()) for d in (single, ddp))
    for ea, eb in zip(ha["epochs"], hb["epochs"], strict=True):
        assert eb["train_loss"] == pytest.approx(ea["train_loss"], abs=1e-4)
        assert eb["valid_loss"] == pytest.approx(ea["valid_loss"], abs=1e-4)
    pa, pb = (np.load(d / "predictions.npz") for d in (single, ddp))
    np.testing.assert_array_equal(pa["valid_rows"], pb["valid_rows"])
    np.testing.assert_allclose(pa["valid_logits"], pb["valid_logits"], atol=1e-3)


# The improved CNN, tiny, without dropout (each process draws its own masks): its batch norm must see the
# whole batch, and batches of 5 (23 clips: 5, 5, 5, 5, 3) split 3/2 and 2/1 between the two processes.
IMPROVED = """
import sys
from rawtag.train import TrainConfig, fit
config = TrainConfig(model="improved", model_params={"length": 1024, "stride": 1024, "first_filters": 4,
                     "widths": (8, 8, 8), "dropout": 0.0}, epochs=2, batch_size=5, lr=1e-3, max_train_clips=23,
                     max_eval_clips=16, log_every=1, device="cpu")
fit(sys.argv[1], sys.argv[2], config, progress=False)
"""


@pytest.mark.slow
def test_torchrun_uneven_shares_and_batch_norm_match_one_process(tone_prepared, tmp_path):
    script = tmp_path / "train_improved.py"
    script.write_text(IMPROVED)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    subprocess.run([sys.executable, str(script), str(tone_prepared), str(single)], check=True, env=env)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(tone_prepared), str(ddp)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    ha, hb = (json.loads((d / "history.json").read_text()) for d in (single, ddp))
    assert len(ha["iterations"]) == len(hb["iterations"]) == 10, "5 steps per epoch, the last one 2/1"
    # Measured: training losses equal to 1e-7 (1e-3 to 1e-2 without the loss weights or without SyncBatchNorm),
    # validation losses to 2e-5 and logits to 3e-4 (2e-4 to 7e-3 and 5e-3 to 1e-2 without): Adam turns the
    # rounding noise of gradients that are zero in exact arithmetic (the conv biases before batch norm) into
    # steps of the learning rate, which batch norm's running means carry into evaluation.
    for ia, ib in zip(ha["iterations"], hb["iterations"], strict=True):
        assert ib["loss"] == pytest.approx(ia["loss"], abs=1e-5)
    for ea, eb in zip(ha["epochs"], hb["epochs"], strict=True):
        assert eb["valid_loss"] == pytest.approx(ea["valid_loss"], abs=1e-4)
    pa, pb = (np.load(d / "predictions.npz") for d in (single, ddp))
    np.testing.assert_array_equal(pa["valid_rows"], pb["valid_rows"])
    np.testing.assert_allclose(pb["valid_logits"], pa["valid_logits"], atol=1e-3)

"""Workspace: where a profile's data and runs live, and how runs are named and shared between chapters."""
from __future__ import annotations

import json

import pytest

from rawtag.profiles import PROFILES, train_config
from rawtag.workspace import Workspace, locate, project_root


def test_relative_folders_start_at_the_project_root(tmp_path, monkeypatch):
    (tmp_path / "_toc.yml").write_text("root: intro\n")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.delenv("RAWTAG_PROJECT", raising=False)
    monkeypatch.chdir(tmp_path / "notebooks")
    assert project_root() == tmp_path
    assert locate("data") == tmp_path / "data"
    assert locate(tmp_path / "elsewhere") == tmp_path / "elsewhere"
    monkeypatch.setenv("RAWTAG_PROJECT", str(tmp_path / "other"))
    assert project_root() == tmp_path / "other"


def test_profile_picks_dataset_and_labels_say_where_numbers_come_from(tmp_path, monkeypatch):
    monkeypatch.delenv("RAWTAG_SOUNDFONT", raising=False)
    quick = Workspace("quick", data_root=tmp_path)
    assert quick.dataset == "synthetic"
    assert quick.label == "synthetic set (1,200 clips on FluidR3_GM, paper split), quick profile"
    assert quick.prepared == tmp_path / "synthetic-1200-FluidR3_GM" / "prepared-paper"
    smoke = Workspace("smoke", data_root=tmp_path)  # the bank pip installs: a set's folder without a bank's name
    assert smoke.label == "synthetic set (96 clips on TimGM6mb, paper split), smoke profile"
    assert smoke.source == tmp_path / "synthetic-96" / "source"
    paper = Workspace("paper", data_root=tmp_path)
    assert paper.dataset == "mtat" and paper.label == "MagnaTagATune (paper split), paper profile"
    assert paper.source == tmp_path / "mtat" and paper.prepared == tmp_path / "mtat-prepared-paper"
    won = Workspace("paper", data_root=tmp_path, scheme="won")
    assert won.prepared == tmp_path / "mtat-prepared-won"
    assert won.label == "MagnaTagATune (won split), paper profile"
    with pytest.raises(ValueError, match="unknown split scheme 'random'"):
        Workspace("quick", scheme="random")
    with pytest.raises(ValueError, match="unknown dataset 'fma'"):
        Workspace("quick", dataset="fma")
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        Workspace("huge")


def test_a_set_on_another_bank_and_its_runs_live_apart(tmp_path, monkeypatch):
    monkeypatch.delenv("RAWTAG_SOUNDFONT", raising=False)
    quick = Workspace("quick", data_root=tmp_path / "data", runs_root=tmp_path / "runs")
    assert quick.soundfont == "FluidR3_GM"
    assert quick.run_dir("base") == tmp_path / "runs" / "synthetic-FluidR3_GM-quick" / "base"
    monkeypatch.setenv("RAWTAG_SOUNDFONT", "TimGM6mb")  # the override: the quick book on the bank pip installs
    tim = Workspace("quick", data_root=tmp_path / "data", runs_root=tmp_path / "runs")
    assert tim.source == tmp_path / "data" / "synthetic-1200" / "source"
    assert tim.run_dir("base") == tmp_path / "runs" / "synthetic-quick" / "base"
    monkeypatch.setenv("RAWTAG_SOUNDFONT", str(tmp_path / "MyBank.sf2"))  # a file: named by its stem
    mine = Workspace("smoke", data_root=tmp_path / "data", runs_root=tmp_path / "runs")
    assert mine.prepared == tmp_path / "data" / "synthetic-96-MyBank" / "prepared-paper"
    assert mine.run_dir("base").parent.name == "synthetic-MyBank-smoke"
    assert "96 clips on MyBank" in mine.label
    assert Workspace("paper", runs_root=tmp_path).run_dir("base").parent.name == "mtat-paper"  # MTAT: no bank


def test_run_names_drop_defaults_so_chapters_share_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("RAWTAG_SOUNDFONT", raising=False)
    ws = Workspace("smoke", runs_root=tmp_path)
    assert ws.run_dir("base") == tmp_path / "synthetic-smoke" / "base"
    assert ws.run_dir("base", length=256, stride=256, time_pool="max", normalization="dataset") == ws.run_dir("base")
    assert ws.run_dir("base", length=512, stride=256).name == "base_length=512"  # stride 256 is the default
    assert ws.run_dir("base", length=1024, stride=512).name == "base_length=1024_stride=512"
    assert ws.run_dir("improved", widths=(32, 32)).name == "improved_widths=32-32"
    assert ws.run_dir("base", budget_of="improved").name == "base_budget_of=improved"
    won = Workspace("smoke", runs_root=tmp_path, scheme="won")  # another split: its own folder of runs
    assert won.run_dir("base") == tmp_path / "synthetic-smoke-won" / "base"


def test_a_setting_equal_to_the_profiles_budget_names_the_same_run(tmp_path):
    quick = Workspace("quick", runs_root=tmp_path)
    assert quick.run_dir("base", epochs=20) == quick.run_dir("base")  # the quick profile's epochs
    assert quick.run_dir("improved", max_train_clips=160, epochs=10) == quick.run_dir("improved")
    assert quick.run_dir("base", epochs=40).name == "base_epochs=40"
    assert quick.run_dir("improved", max_train_clips=161).name == "improved_max_train_clips=161"
    paper = Workspace("paper", runs_root=tmp_path)
    assert paper.run_dir("base", epochs=20, lr=1e-3) == paper.run_dir("base")  # the paper's protocol


def test_the_reference_run_trains_the_profiles_reference_epochs(tmp_path):
    quick = Workspace("quick", runs_root=tmp_path)
    assert quick.reference_epochs == PROFILES["quick"]["reference_epochs"] == 40
    assert quick.config("base").epochs == 20  # every other run: the sweep's epochs
    assert quick.run_dir("base", epochs=quick.reference_epochs) != quick.run_dir("base")
    for name in ("smoke", "paper"):  # no reference_epochs: the reference run is the sweep's own
        ws = Workspace(name, runs_root=tmp_path)
        assert ws.reference_epochs == ws.config("base").resolved().epochs
        assert ws.run_dir("base", epochs=ws.reference_epochs) == ws.run_dir("base")


def test_config_uses_profile_budget_and_full_model_parameters():
    ws = Workspace("quick")
    cfg = ws.config("improved")
    budget = PROFILES["quick"]["per_model"]["improved"]  # the quick profile's budget for the improved CNN
    assert (cfg.epochs, cfg.max_train_clips) == (budget["epochs"], budget["max_train_clips"]) != (20, None)
    assert cfg.model_params["widths"] == (128, 512, 512) and "n_tags" not in cfg.model_params
    base = ws.config("base", budget_of="improved", length=512, normalization="clip")
    assert (base.epochs, base.max_train_clips, base.normalization) == (cfg.epochs, cfg.max_train_clips, "clip")
    assert base.model_params["length"] == 512
    assert train_config("paper", "base").epochs is None  # the paper profile defers to the model's protocol
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        ws.config("resnet")


@pytest.mark.slow  # trains the base CNN for an epoch: a few seconds
def test_train_shares_and_reads_back_a_finished_run(tone_prepared, tmp_path, monkeypatch):
    ws = Workspace("smoke", runs_root=tmp_path)
    monkeypatch.setattr(Workspace, "data", lambda self, progress=True: __import__(
        "rawtag.data.prepare", fromlist=["PreparedSet"]).PreparedSet(tone_prepared))
    out, results = ws.train("base", length=1024, stride=1024, epochs=1, progress=False)
    stamp = (out / "results.json").stat().st_mtime_ns
    again_dir, again = ws.train("base", length=1024, stride=1024, epochs=1, progress=False)
    assert again_dir == out and again == results
    assert (out / "results.json").stat().st_mtime_ns == stamp, "a finished run is read back, not retrained"
    assert json.loads((out / "config.json").read_text())["model_params"]["time_pool"] == "max"


def test_data_prepares_with_the_workspace_scheme(tmp_path, monkeypatch):
    import rawtag.data.prepare as prep
    import rawtag.data.synth as synth

    calls = []
    monkeypatch.setattr(synth, "write_synthetic", lambda *a, **k: None)
    monkeypatch.setattr(prep, "prepare", lambda source, out, **k: calls.append((out, k["scheme"])))
    monkeypatch.setattr(prep, "PreparedSet", lambda path: path)
    for scheme in ("paper", "won"):
        ws = Workspace("smoke", data_root=tmp_path, scheme=scheme)
        assert ws.data(progress=False) == ws.prepared
    assert [(out.name, scheme) for out, scheme in calls] == [("prepared-paper", "paper"), ("prepared-won", "won")]


def test_sample_level_runs_get_a_set_at_their_rate_for_the_budgets_clips(tmp_path, monkeypatch):
    """Chapter 07: `data_for` prepares the 22,050 Hz set from the same source, only for the clips that the
    budget (max_train_clips / max_eval_clips) takes from the 12 kHz set, once."""
    from rawtag.data.batches import subset
    from rawtag.data.prepare import prepare

    from conftest import tone_source

    monkeypatch.chdir(tmp_path)
    ws = Workspace("smoke", data_root=tmp_path / "data", runs_root=tmp_path / "runs", scheme="won")
    tone_source(ws.source, clips=40)  # a source in MTAT's format where the workspace keeps its synthetic set
    prepare(ws.source, ws.prepared, scheme="won", top_k=4, workers=2, progress=False)
    base = ws.data(progress=False)
    assert ws.data_for(ws.config("base"), progress=False).path == base.path, "the paper's CNNs: the 12 kHz set"
    cfg = ws.config("samplecnn", max_train_clips=5, max_eval_clips=2)
    fast = ws.data_for(cfg, progress=False)
    assert fast.sample_rate == 22050 and fast.clips.shape[1] == 641_655
    wanted = {s: sorted(base.paths[r] for r in subset(base.rows(s), limit))
              for s, limit in (("train", 5), ("valid", 2), ("test", 2))}
    assert {s: sorted(fast.paths[r] for r in fast.rows(s)) for s in wanted} == wanted, "the same music"
    assert fast.tags == base.tags
    stamp = (fast.path / "manifest.json").stat().st_mtime_ns
    assert ws.data_for(cfg, progress=False).path == fast.path
    assert (fast.path / "manifest.json").stat().st_mtime_ns == stamp, "prepared once, then read back"

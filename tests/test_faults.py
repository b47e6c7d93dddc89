"""Faults and bad input, as a new user meets them: nothing lost, no tracebacks (issue 12).

A full disk is simulated portably: a patched `os.pwrite` / `write_text` / `np.save` that raises ENOSPC
(or writes short) at the N-th call, a patched free-space query, and RLIMIT_FSIZE in a subprocess (the
real errors of torch and libsndfile). Kills are real SIGKILLs, sent by a subprocess to itself right after
a chosen step (the N-th `os.pwrite`, or the rename of a chosen file). Every failing command is checked
for its exit code, its one-line message, and that no earlier good output changed.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import re
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import rawtag.data.prepare as prep
from rawtag.__main__ import build_parser, main
from rawtag.data import audio, mtat
from rawtag.data.prepare import PreparedSet, PrepareError, prepare
from rawtag.models import build_model

from conftest import MTAT_TAGS, tone_source, write_annotations

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


# ------------------------------------------------------------------------------------------ helpers

def digest(folder: Path) -> dict:
    """Every file under `folder` (relative path -> sha256): what "unchanged" and "byte-identical" compare."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def one_line(err: str, command: str) -> str:
    """The single line a failing command printed: `rawtag COMMAND: ...`, and no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"rawtag {command}: "), err
    assert "Traceback" not in err and "weights_only=False" not in err
    return lines[0]


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# A subprocess that runs `rawtag ARGS` and SIGKILLs itself right after the COUNT-th os.pwrite (STAGE
# "pwrite") or right after the COUNT-th rename onto a file named STAGE.
KILLER = r"""
import os, signal, sys
stage, count, seen = sys.argv[1], int(sys.argv[2]), [0]
def hit():
    seen[0] += 1
    if seen[0] == count:
        os.kill(os.getpid(), signal.SIGKILL)
if stage == "pwrite":
    real_pwrite = os.pwrite
    def pwrite(*a):
        n = real_pwrite(*a)
        hit()
        return n
    os.pwrite = pwrite
else:
    real_replace = os.replace
    def replace(src, dst, **kw):
        real_replace(src, dst, **kw)
        if os.path.basename(os.fspath(dst)) == stage:
            hit()
    os.replace = replace
from rawtag.__main__ import main
sys.exit(main(sys.argv[3:]))
"""


def killed_at(stage: str, count: int, *args) -> None:
    proc = subprocess.run([sys.executable, "-c", KILLER, stage, str(count), *map(str, args)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


def limited(limit: int, *args) -> subprocess.CompletedProcess:
    """`rawtag ARGS` with no file larger than `limit` bytes: writes past it fail as on a full disk."""
    def setup():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return subprocess.run([sys.executable, "-m", "rawtag", *map(str, args)], cwd=ROOT, env=ENV, preexec_fn=setup,
                          capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """13 tone clips in folders 0-c: train 12, valid 1 (so every tag is single-class there), test none;
    and the same set prepared without any fault, the reference every resumed preparation must equal."""
    root = tmp_path_factory.mktemp("faults")
    src = tone_source(root / "src", clips=13)
    whole = prepare(src, root / "whole", top_k=4, workers=1, progress=False)
    return src, whole


@pytest.fixture(scope="module")
def run(tone_prepared, tmp_path_factory):
    """A finished 2-epoch run, trained through the CLI; tests copy it before they damage anything."""
    out = tmp_path_factory.mktemp("run") / "r"
    assert main(train_args(tone_prepared, out, 2)) == 0
    return out


def train_args(data, out, epochs, *extra):
    return ["train", "--data", str(data), "--out", str(out), "--profile", "smoke", "--epochs", str(epochs),
            "--max-train-clips", "4", "--max-eval-clips", "4", "--batch-size", "4", "--lr", "0.01", *extra]


def copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


# --------------------------------------------------------------------- data loss 1: kills in prepare

@pytest.mark.parametrize("stage,count", [
    ("pwrite", 5),                 # the 5th row's bytes are written, its log line is not
    ("labels.npy", 1),             # every row done; labels written, row statistics not
    ("rowstats.npy", 1),           # ... both written, the audio still under its .partial name
    ("clips.int16", 1),            # the audio renamed into place, the manifest not yet written
    ("manifest.json", 1),          # the manifest written, .prepare/ not yet removed
])
def test_prepare_killed_at_each_stage_resumes_byte_identical(tiny, tmp_path, stage, count):
    src, whole = tiny
    out = tmp_path / "p"
    killed_at(stage, count, "prepare", "--source", src, "--out", out, "--top-k", 4, "--workers", 1)
    if stage != "manifest.json":  # a half-finished folder is never taken for a prepared one
        with pytest.raises(PrepareError, match="unfinished preparation"):
            PreparedSet(out)
    prepare(src, out, top_k=4, workers=1, progress=False)
    assert digest(out) == digest(whole)
    assert np.array_equal(PreparedSet(out).clips, PreparedSet(whole).clips)


# ----------------------------------------------------------- data loss 1 and 2: a full disk in prepare

def _enospc():
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _fail_nth(real, n, short=False):
    """`real` that raises ENOSPC at its n-th call (or, with `short`, writes only half of that call's bytes)."""
    calls = [0]

    def wrapper(fd, data, offset):
        calls[0] += 1
        if calls[0] == n:
            if short:
                return real(fd, bytes(data)[: len(data) // 2], offset)
            raise _enospc()
        return real(fd, data, offset)
    return wrapper


def test_prepare_short_write_is_completed(tiny, tmp_path, monkeypatch):
    src, whole = tiny
    monkeypatch.setattr(os, "pwrite", _fail_nth(os.pwrite, 3, short=True))
    out = prepare(src, tmp_path / "p", top_k=4, workers=1, progress=False)
    monkeypatch.undo()
    assert digest(out) == digest(whole)  # before: the row's second half was left as zeros


@pytest.mark.parametrize("where", ["row", "labels", "manifest"])
def test_prepare_full_disk_is_one_line_and_the_rerun_ends_byte_identical(tiny, tmp_path, monkeypatch, capsys,
                                                                       where):
    src, whole = tiny
    out = tmp_path / "p"
    if where == "row":
        monkeypatch.setattr(os, "pwrite", _fail_nth(os.pwrite, 4))
    elif where == "labels":
        monkeypatch.setattr(np, "save", lambda f, a, *k, **kw: (_ for _ in ()).throw(_enospc()))
    else:
        real_write = prep.write_text
        monkeypatch.setattr(prep, "write_text", lambda p, t: (_ for _ in ()).throw(_enospc())
                            if Path(p).name == prep.MANIFEST else real_write(p, t))
    code, _, err = cli(capsys, "prepare", "--source", src, "--out", out, "--top-k", 4, "--workers", 1)
    monkeypatch.undo()
    assert code == 2
    line = one_line(err, "prepare")
    assert "disk full after" in line and "rerun the same command to resume" in line
    if where == "row":
        assert "disk full after 3 of 13 clips" in line and "more is needed" in line
    assert not (out / prep.MANIFEST).exists()
    assert cli(capsys, "prepare", "--source", src, "--out", out, "--top-k", 4, "--workers", 1)[0] == 0
    assert digest(out) == digest(whole)


def test_prepare_log_line_cut_by_a_full_disk_then_another_fault(tiny, tmp_path, monkeypatch):
    """A log line half-written by a full disk must not merge with the next run's first line."""
    src, whole = tiny
    out = tmp_path / "p"
    real_open = open

    class HalfLines:
        def __init__(self, f):
            self.f, self.lines = f, 0

        def write(self, text):
            self.lines += 1
            if self.lines == 3:
                self.f.write(text[: len(text) // 2])
                self.f.flush()
                raise _enospc()
            return self.f.write(text)

        def close(self):
            self.f.close()

    monkeypatch.setattr(prep, "open", lambda p, mode="r", **kw: HalfLines(real_open(p, mode, **kw))
                        if str(p).endswith("done.log") else real_open(p, mode, **kw), raising=False)
    with pytest.raises(PrepareError, match="disk full"):
        prepare(src, out, top_k=4, workers=1, progress=False)
    monkeypatch.undo()
    monkeypatch.setattr(os, "pwrite", _fail_nth(os.pwrite, 2))
    with pytest.raises(PrepareError, match="disk full"):
        prepare(src, out, top_k=4, workers=1, progress=False)
    monkeypatch.undo()
    prepare(src, out, top_k=4, workers=1, progress=False)
    assert digest(out) == digest(whole)


def test_prepare_checks_free_space_before_writing(tiny, tmp_path, monkeypatch, capsys):
    src, _ = tiny
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**12, 10**12 - 10**6, 10**6))
    code, _, err = cli(capsys, "prepare", "--source", src, "--out", tmp_path / "p", "--top-k", 4)
    assert code == 2
    line = one_line(err, "prepare")
    assert "needs about 9.1 MB free" in line and "has 1.0 MB" in line
    assert not (tmp_path / "p").exists()


# ------------------------------------------------------- refusals: inputs, other datasets, other runs

def test_prepare_refuses_a_folder_that_is_not_a_preparation(tiny, tmp_path, capsys):
    src, whole = tiny
    before = digest(src)
    code, _, err = cli(capsys, "prepare", "--source", src, "--out", src, "--top-k", 4)  # into its own input
    assert code == 2 and "is not empty and holds no preparation (0/, 1/" in one_line(err, "prepare")
    assert digest(src) == before
    other = copy_run(whole, tmp_path / "other")  # a set prepared with other parameters
    kept = digest(other)
    code, _, err = cli(capsys, "prepare", "--source", src, "--out", other, "--top-k", 3)
    assert code == 2 and "other parameters (top_k" in one_line(err, "prepare") and "--force" in err
    assert digest(other) == kept
    assert cli(capsys, "prepare", "--source", src, "--out", other, "--top-k", 3, "--force")[0] == 0
    assert PreparedSet(other).manifest["params"]["top_k"] == 3


def _fake_mtat(folder: Path) -> Path:
    (folder / "0").mkdir(parents=True)
    (folder / "0" / "real.mp3").write_bytes(b"ID3" + bytes(500))
    write_annotations(folder / mtat.ANNOTATIONS, [(1, {"guitar"}, "0/real.mp3"), (2, {"rock"}, "0/real2.mp3")])
    (folder / mtat.CLIP_INFO).write_text('"clip_id"\t"track_number"\t"mp3_path"\r\n"1"\t"1"\t"0/real.mp3"\r\n')
    return folder


def test_synth_refuses_to_write_over_mtat(tmp_path, capsys):
    folder = _fake_mtat(tmp_path / "mtat")
    before = digest(folder)
    code, _, err = cli(capsys, "synth", "--out", folder, "--clips", 3)
    line = one_line(err, "synth")
    assert code == 2 and "annotations_final.csv" in line and "(2 clips)" in line and "--force" in line
    assert digest(folder) == before


@pytest.mark.parametrize("content,expected", [(None, "no such file"), (b"not a soundfont", "not a SoundFont 2 file")],
                         ids=["missing", "not a SoundFont"])
def test_synth_bad_soundfont_is_one_line_and_writes_nothing(tmp_path, capsys, content, expected):
    bank = tmp_path / "bank.sf2"
    if content is not None:
        bank.write_bytes(content)
    code, _, err = cli(capsys, "synth", "--out", tmp_path / "s", "--clips", 1, "--soundfont", bank)
    line = one_line(err, "synth")
    assert code == 2 and "--soundfont" in line and expected in line and "fluid-soundfont-gm" in line
    assert not (tmp_path / "s").exists()


def test_synth_other_seed_is_refused_and_force_rewrites_every_clip(tmp_path, capsys):
    from rawtag.data import synth

    folder = synth.write_synthetic(tmp_path / "s", clips=2, seed=1, workers=1, progress=False)
    before = digest(folder)
    # seed 13 names its second clip as seed 1 does: before, the old audio stayed under the new labels
    code, _, err = cli(capsys, "synth", "--out", folder, "--clips", 2, "--seed", 13, "--workers", 1)
    assert code == 2 and "seed 1" in one_line(err, "synth") and "--force" in err
    assert digest(folder) == before
    assert cli(capsys, "synth", "--out", folder, "--clips", 2, "--seed", 13, "--workers", 1, "--force")[0] == 0
    new, items = digest(folder), synth.plan(2, seed=13)
    assert (folder / mtat.ANNOTATIONS).read_bytes() == synth.builder._tables(items)[mtat.ANNOTATIONS]
    collided = [it for it in items if it.path in before]
    assert [it.path for it in collided] == ["3/synth_techno_01-album_00001-01-song_00001-0-29.mp3"]
    synth.write_clip(collided[0], str(tmp_path / "fresh"))  # the new seed's audio for that name
    assert new[collided[0].path] == digest(tmp_path / "fresh")[collided[0].path] != before[collided[0].path]


def test_splits_refuses_to_overwrite_its_input_or_another_file(tmp_path, capsys):
    ann = tmp_path / mtat.ANNOTATIONS
    write_annotations(ann, [(1, {"guitar"}, "0/a.mp3"), (2, {"guitar"}, "c/b.mp3")])
    before = ann.read_bytes()
    code, _, err = cli(capsys, "splits", "--annotations", ann, "--json", ann)
    assert code == 2 and "the annotation file itself" in one_line(err, "splits")
    assert ann.read_bytes() == before
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": 1}')
    code, _, err = cli(capsys, "splits", "--annotations", ann, "--json", notes)
    assert code == 2 and "--force" in one_line(err, "splits") and notes.read_text() == '{"mine": 1}'
    assert cli(capsys, "splits", "--annotations", ann, "--json", notes, "--force")[0] == 0
    assert cli(capsys, "splits", "--annotations", ann, "--json", notes)[0] == 0  # its own output: rewritten


def test_train_refuses_a_data_folder_as_out(tiny, tmp_path, capsys):
    data = copy_run(tiny[1], tmp_path / "data")
    before = digest(data)
    code, _, err = cli(capsys, *train_args(data, data, 1))
    assert code == 2 and "is not a run folder: it holds clips.int16" in one_line(err, "train")
    assert digest(data) == before


def test_train_with_fewer_epochs_leaves_the_records_alone(run, tone_prepared, tmp_path, capsys):
    r = copy_run(run, tmp_path / "r")
    before = digest(r)
    code, _, err = cli(capsys, *train_args(tone_prepared, r, 1))
    line = one_line(err, "train")
    assert code == 2 and "trained for 2 epochs" in line and "--epochs 2 or more" in line and "--force" in line
    assert digest(r) == before
    code, _, err = cli(capsys, *train_args(tone_prepared, r, 2, "--lr", "0.02"))
    assert code == 2 and "other settings (train.lr)" in one_line(err, "train") and digest(r) == before


# ---------------------------------------------------------------- malformed annotations, table-driven

def _annotations(path: Path, rows, header=None, encoding="utf-8", prefix=""):
    tags = ("guitar", "piano")
    head = header or ["clip_id", *tags, "mp3_path"]
    text = prefix + "\r\n".join("\t".join(f'"{v}"' for v in r) for r in [head, *rows]) + "\r\n"
    path.write_bytes(text.encode(encoding))


GOOD = [[1, 1, 0, "0/a.mp3"], [2, 0, 1, "c/b.mp3"], [3, 1, 1, "d/c.mp3"]]
ANNOTATION_CASES = [
    # (name, rows, extra options, exit code, expected text in the message or output)
    ("value -1", [[1, -1, 0, "0/a.mp3"]], {}, 2, "line 2, column 2 ('guitar'): expected 0 or 1, got '-1'"),
    ("value 300", [GOOD[0], [2, 0, 300, "c/b.mp3"]], {}, 2, "line 3, column 3 ('piano'): expected 0 or 1, got '300'"),
    ("label 2", [[1, 2, 0, "0/a.mp3"]], {}, 2, "expected 0 or 1, got '2'"),
    ("clip id not a number", [["x1", 1, 0, "0/a.mp3"]], {}, 2, "line 2, column 1 (clip_id): expected an integer"),
    ("blank first line", GOOD, {"prefix": "\r\n"}, 0, "3 clips"),
    ("UTF-8 byte-order mark", GOOD, {"prefix": "\ufeff"}, 0, "3 clips"),
    ("Latin-1 text", [*GOOD, [4, 1, 0, "0/caf\u00e9.mp3"]], {"encoding": "latin-1"}, 2, "line 5: not UTF-8 text"),
    ("clip info file", [[1, "01", "t", "0/a.mp3"]],
     {"header": ["clip_id", "track_number", "title", "mp3_path"]}, 2, "is MTAT's clip information file"),
    ("duplicate row", [*GOOD, GOOD[0]], {}, 2, "line 5: clip_id 1 is already on line 2 (with the same labels)"),
    ("conflicting labels", [*GOOD, [9, 0, 1, "0/a.mp3"]], {}, 2,
     "mp3_path '0/a.mp3' is already on line 2 (with different labels)"),
    ("climbs out with ..", [*GOOD, [4, 1, 0, "0/../../etc/hostname"]], {}, 2, "is not a path inside the audio"),
    ("absolute path", [*GOOD, [4, 1, 0, "/etc/hostname"]], {}, 2, "is not a path inside the audio"),
    ("wrong field count", [*GOOD, [4, 1, "0/x.mp3"]], {}, 2, "line(s) [5] have the wrong number of fields"),
    ("comma-separated", None, {}, 2, "not an MTAT annotation file"),
    ("empty file", [], {"header": [""]}, 2, "empty annotation file"),
    ("outside folders 0-f", [*GOOD, [4, 1, 0, "g/x.mp3"], [5, 1, 0, "y.mp3"]], {}, 0,
     "2 clip(s) outside folders 0-f are in no split: g/x.mp3, y.mp3"),
    # issue 23
    ("tag column twice", [[1, 1, 0, "0/a.mp3"]], {"header": ["clip_id", "guitar", "guitar", "mp3_path"]}, 2,
     "line 1: the tag column 'guitar' appears twice (columns 2 and 3)"),
    ("path with ./", [*GOOD, [4, 1, 0, "0/./a.mp3"]], {}, 2, "mp3_path '0/a.mp3' is already on line 2"),
    ("path with //", [*GOOD, [4, 1, 0, "0//a.mp3"]], {}, 2, "mp3_path '0/a.mp3' is already on line 2"),
    ("every label 0", [[1, 0, 0, "0/a.mp3"], [2, 0, 0, "c/b.mp3"]], {}, 2, "no clip has any tag"),
    ("UTF-16 text", GOOD, {"encoding": "utf-16"}, 2, "UTF-16 text (or binary data), not UTF-8"),
]


@pytest.mark.parametrize("name,rows,options,code,expected", ANNOTATION_CASES, ids=[c[0] for c in ANNOTATION_CASES])
def test_malformed_annotations(tmp_path, capsys, name, rows, options, code, expected):
    ann = tmp_path / mtat.ANNOTATIONS
    if rows is None:
        ann.write_text("clip_id,guitar,mp3_path\n1,1,0/a.mp3\n")
    elif options.get("header") == [""]:
        ann.write_bytes(b"")
    else:
        _annotations(ann, rows, **options)
    target = tmp_path / "splits.json"
    target.write_text(json.dumps({"tags": ["old"], "train": [], "valid": [], "test": []}))
    before = target.read_bytes()
    got, out, err = cli(capsys, "splits", "--annotations", ann, "--json", target, "--top-k", 2)
    assert got == code, err
    if code:
        assert expected in one_line(err, "splits")
        assert target.read_bytes() == before
    else:
        assert not err
        counted = json.loads(target.read_text())
        assert expected in out or f"{sum(len(counted[s]) for s in ('train', 'valid', 'test'))} clips" == expected



def _annotation_lines(src):
    return (src / mtat.ANNOTATIONS).read_bytes().decode().split("\r\n")


def _prepare_refuses(capsys, src, lines, out, message):
    """Write `lines` as the source's annotation file; `prepare` must refuse it with `message`, writing nothing."""
    (src / mtat.ANNOTATIONS).write_bytes("\r\n".join(lines).encode())
    code, _, err = cli(capsys, "prepare", "--source", src, "--out", out)
    assert code == 2 and message in one_line(err, "prepare")
    assert not out.exists()


def test_prepare_refuses_a_label_of_2_before_decoding(tmp_path, capsys):
    src = tone_source(tmp_path / "src", clips=2, seconds=0.1)
    lines = _annotation_lines(src)
    cells = lines[1].split("\t")
    cells[MTAT_TAGS.index("guitar") + 1] = '"2"'  # prepare took it; train failed on it much later
    lines[1] = "\t".join(cells)
    _prepare_refuses(capsys, src, lines, tmp_path / "p", "('guitar'): expected 0 or 1, got '2'")


def test_prepare_lists_clips_outside_folders_0_to_f(tmp_path, capsys):
    src = tone_source(tmp_path / "src", clips=2, seconds=0.1)
    with open(src / mtat.ANNOTATIONS, "ab") as f:  # a clip in no MTAT folder: no split can take it
        f.write(("\t".join(['"9"', *('"1"' if t == "guitar" else '"0"' for t in MTAT_TAGS), '"extra/x.wav"'])
                 + "\r\n").encode())
    code, out, _ = cli(capsys, "prepare", "--source", src, "--out", tmp_path / "p", "--top-k", 4)
    assert code == 0 and "1 clip(s) outside folders 0-f are in no split, e.g. extra/x.wav" in out
    assert PreparedSet(tmp_path / "p").manifest["outside_folders"] == ["extra/x.wav"]


def test_text_file_named_mp3_is_called_not_audio(tmp_path):
    fake = tmp_path / "song.mp3"
    fake.write_text("these are my lyrics, not audio\n" * 20)
    with pytest.raises(audio.AudioError, match=r"not audio in a format libsndfile reads .* holds text"):
        audio.load(fake)


# -------------------------------------------------------------------------- devices, table-driven

DEVICE_CASES = [("banana", "unknown device 'banana'; choose one of auto, cpu, cuda, cuda:N, mps"),
                ("cuda:x", "unknown device 'cuda:x'"), ("cpu:1", "unknown device 'cpu:1'")]
if not torch.cuda.is_available():
    DEVICE_CASES.append(("cuda", "device 'cuda' is not available: this torch"))


@pytest.mark.parametrize("command", ["train", "evaluate", "tag"])
@pytest.mark.parametrize("device,expected", DEVICE_CASES, ids=[c[0] for c in DEVICE_CASES])
def test_bad_device_is_one_line(run, tone_prepared, tmp_path, capsys, command, device, expected):
    r = copy_run(run, tmp_path / "r")
    before = digest(r)
    args = {"train": train_args(tone_prepared, r, 3), "evaluate": ["evaluate", "--run", r],
            "tag": ["tag", tmp_path / "x.wav", "--run", r]}[command]
    code, _, err = cli(capsys, *args, "--device", device)
    line = one_line(err, command)
    assert code == 2 and expected in line and "this torch" in line
    assert digest(r) == before


# ------------------------------------------------------------- damaged checkpoints, table-driven

def _crafted(path: Path):
    class Payload:  # unpickling it would call print: refused by weights-only loading, never run
        def __reduce__(self):
            return (print, ("a crafted pickle ran code",))
    path.write_bytes(pickle.dumps({"model": Payload()}, protocol=2))


CHECKPOINT_CASES = {
    "empty": (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "is truncated or corrupt"),
    "random bytes": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)), "is truncated or corrupt"),
    "crafted pickle": (_crafted, "holds objects other than tensors and plain values and was refused"),
    "no model inside": (lambda p: torch.save({"weights": torch.zeros(3)}, p), "is not a rawtag checkpoint"),
    "another model's shape": (lambda p: torch.save({"model": build_model("base", n_tags=7).state_dict(),
                                                     "epoch": 1}, p), "holds weights of another model shape"),
}


@pytest.mark.parametrize("damage", list(CHECKPOINT_CASES))
def test_damaged_best_checkpoint(run, tmp_path, capsys, damage):
    r = copy_run(run, tmp_path / "r")
    spoil, expected = CHECKPOINT_CASES[damage]
    spoil(r / "checkpoints" / "best.pt")
    before = digest(r)
    import soundfile as sf

    sf.write(tmp_path / "x.wav", np.zeros(1000, np.float32), 16000)
    for args, command in ((["evaluate", "--run", r], "evaluate"), (["tag", tmp_path / "x.wav", "--run", r], "tag")):
        code, out, err = cli(capsys, *args)
        line = one_line(err, command)
        assert code == 2 and str(r / "checkpoints" / "best.pt") in line and expected in line, line
        assert "ran code" not in out
    assert digest(r) == before


@pytest.mark.parametrize("damage", ["truncated", "crafted pickle", "another model's shape"])
def test_damaged_last_checkpoint_on_resume(run, tone_prepared, tmp_path, capsys, damage):
    r = copy_run(run, tmp_path / "r")
    spoil, expected = CHECKPOINT_CASES[damage]
    spoil(r / "checkpoints" / "last.pt")
    before = digest(r)
    code, _, err = cli(capsys, *train_args(tone_prepared, r, 3))  # extend to 3 epochs: resumes from last.pt
    line = one_line(err, "train")
    assert code == 2 and expected in line and f"delete {r / 'checkpoints' / 'last.pt'}" in line
    assert digest(r) == before  # config.json too: not rewritten before the checkpoint is read


# ------------------------------------------------------------------- kills and a full disk in train

@pytest.mark.slow  # a subprocess that imports torch and trains: ~5 s each on 2 busy cores
@pytest.mark.parametrize("stage,count", [("best.pt", 1), ("last.pt", 2), ("predictions.npz", 1)],
                         ids=["after best.pt of epoch 1", "after last.pt of epoch 2", "before results.json"])
def test_train_killed_at_each_stage_resumes_exactly(run, tone_prepared, tmp_path, capsys, stage, count):
    out = tmp_path / "r"
    killed_at(stage, count, *train_args(tone_prepared, out, 2))
    assert not (out / "results.json").exists()
    assert cli(capsys, *train_args(tone_prepared, out, 2))[0] == 0
    assert json.loads((out / "results.json").read_text()) == json.loads((run / "results.json").read_text())
    a, b = (torch.load(d / "checkpoints" / "last.pt", weights_only=True) for d in (out, run))
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


@pytest.mark.slow  # a subprocess that imports torch and trains: ~5 s each on 2 busy cores
def test_train_on_a_full_disk_is_one_line_and_resumes(run, tone_prepared, tmp_path, capsys):
    out = tmp_path / "r"
    proc = limited(4096, *train_args(tone_prepared, out, 2))  # config.json fits; a checkpoint does not
    assert proc.returncode == 2, proc.stderr
    line = one_line(proc.stderr, "train")
    assert "cannot write" in line and "best.pt" in line and "rerun the same command to resume" in line
    assert cli(capsys, *train_args(tone_prepared, out, 2))[0] == 0
    assert json.loads((out / "results.json").read_text()) == json.loads((run / "results.json").read_text())
    assert not list(out.rglob("*.tmp*"))


def test_synth_on_a_full_disk_is_one_line_and_resumes(tmp_path, capsys):
    out = tmp_path / "s"
    proc = limited(50_000, "synth", "--out", out, "--clips", 1, "--workers", 1)  # an MP3 is ~116 kB
    assert proc.returncode == 2, proc.stderr
    line = one_line(proc.stderr, "synth")
    assert "cannot write" in line and "the disk may be full" in line and "rerun the same command" in line
    assert not (out / mtat.ANNOTATIONS).exists()
    assert cli(capsys, "synth", "--out", out, "--clips", 1, "--workers", 1)[0] == 0
    assert mtat.read_annotations(out / mtat.ANNOTATIONS).mp3_paths[0].endswith(".mp3")


def test_synth_checks_free_space_at_once(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "rawtag", "synth", "--out", str(tmp_path / "big"), "--clips",
                           "100000000"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stdout.startswith("synth: 100,000,000 clips (about 11.8 TB)")  # said before any work
    assert "needs about 11.8 TB free" in one_line(proc.stderr, "synth")
    assert not (tmp_path / "big").exists()


# ------------------------------------------------------------------------------ misleading messages

def test_seed_minus_one_names_the_option_and_writes_nothing(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["synth", "--out", str(tmp_path / "s"), "--clips", "1", "--seed", "-1"])
    assert e.value.code == 2 and "argument --seed: must be 0 or more, got -1" in capsys.readouterr().err
    from rawtag.data.synth import write_synthetic

    with pytest.raises(ValueError, match="--seed must be a whole number, 0 or more"):
        write_synthetic(tmp_path / "s", 1, seed=-1, progress=False)
    assert not (tmp_path / "s").exists()


@pytest.mark.slow  # trains two epochs, then evaluates and tags: about 5 s
def test_tiny_validation_split_keeps_a_usable_checkpoint(tiny, tmp_path, capsys):
    _, data = tiny
    r = tmp_path / "r"
    code, out, err = cli(capsys, "train", "--data", data, "--out", r, "--profile", "smoke", "--epochs", 2,
                         "--max-train-clips", 4, "--batch-size", 4)
    assert code == 0, err
    assert "ROC-AUC is undefined: every tag has a single class in the 1 validation clips" in out
    assert "valid ROC-AUC undefined" in out
    results = json.loads((r / "results.json").read_text())
    assert results["best_epoch"] == 2 and np.isnan(results["valid"]["roc_auc"])
    code, _, err = cli(capsys, "evaluate", "--run", r, "--split", "test")
    assert code == 2 and "has no test clips (scheme 'folder'); choose --split" in one_line(err, "evaluate")
    code, out, _ = cli(capsys, "tag", data.parent / "src" / "0" / "tone_000.wav", "--run", r)
    assert code == 0 and len(out.splitlines()) == 5


def test_empty_train_split_says_why(tmp_path, capsys):
    src = tone_source(tmp_path / "src", clips=13, seconds=0.5)  # every clip too short: all skipped
    prepare(src, tmp_path / "p", top_k=4, workers=1, progress=False)
    code, _, err = cli(capsys, "train", "--data", tmp_path / "p", "--out", tmp_path / "r", "--profile", "smoke")
    line = one_line(err, "train")
    assert code == 2 and "the train split has no clips (all 12 of its clips were skipped as unreadable" in line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("command,resume", [("tag", False), ("train", True)])
def test_ctrl_c_offers_resume_only_where_there_is_one(run, tone_prepared, tmp_path, capsys, monkeypatch, command,
                                                     resume):
    import rawtag.inference
    import rawtag.train

    def interrupt(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(*((rawtag.inference, "tag_audio") if command == "tag" else (rawtag.train, "fit")), interrupt)
    args = {"tag": ["tag", tmp_path / "x.wav", "--run", run], "train": train_args(tone_prepared, tmp_path / "r", 1)}
    code, _, err = cli(capsys, *args[command])
    assert code == 130 and one_line(err, command) == f"rawtag {command}: interrupted" + (
        "; run the same command again to resume" if resume else "")


# --------------------------------------------------------------------------------------- logs, help

def test_output_to_a_file_has_plain_lines_not_bar_redraws(tiny, tone_prepared, tmp_path, capsys):
    src, _ = tiny
    code, out, err = cli(capsys, "prepare", "--source", src, "--out", tmp_path / "p", "--top-k", 4, "--workers", 1)
    assert code == 0 and "\r" not in out + err and not err
    assert "prepare: 13 of 13 clips (100 %)" in out
    code, out, err = cli(capsys, *train_args(tone_prepared, tmp_path / "r", 2))
    assert code == 0 and "\r" not in out + err and not err
    assert [line[:11] for line in out.splitlines() if line.startswith("epoch")] == ["epoch   1/2", "epoch   2/2"]


def test_help_describes_every_command_and_option(capsys):
    from rawtag.models import MODELS

    parser = build_parser(sorted(MODELS))
    commands = parser._subparsers._group_actions[0].choices
    assert set(commands) == {"synth", "download", "splits", "prepare", "train", "evaluate", "tag", "book"}
    for name, sub in commands.items():
        assert sub.description and len(sub.description) > 40, name
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(m in help_text for m in MODELS) and "--force" in help_text
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == "rawtag 0.1.0"


# ====================================================================== issue 23: nothing lost, nothing left

@pytest.fixture
def site():
    """A local MTAT mirror (tests/test_mtat.py's server): 6 clips in folders 0 and c, as a 3-part zip."""
    from test_mtat import Server, _archive, _split3

    members = {f"{c}/clip_{c}_{i}.mp3": bytes([i]) * 5000 + c.encode() * 3000 for c in "0c" for i in range(3)}
    files = {**_split3(_archive(members)), mtat.ANNOTATIONS: b'"clip_id"\t"mp3_path"\r\n'}
    server = Server(files)
    yield server, members, {n: hashlib.sha256(b).hexdigest() for n, b in files.items()}
    server.close()


def test_download_after_the_parts_are_deleted_fetches_nothing_and_keeps_the_users_files(site, tmp_path):
    from rawtag.data.download import download

    server, members, sums = site
    download(tmp_path, base_url=server.url, files=sums, progress=False)
    (tmp_path / "0" / "my_notes.txt").write_text("mine")
    for part in ("mp3.zip.001", "mp3.zip.002", "mp3.zip.003"):
        (tmp_path / part).unlink()  # to free space, once extracted
    before = len(server.requests)
    download(tmp_path, base_url=server.url, files=sums, progress=False)
    assert len(server.requests) == before  # the extraction is recognised from the extracted files
    (tmp_path / "c" / "clip_c_1.mp3").unlink()  # a clip lost: the parts are fetched and extracted again
    download(tmp_path, base_url=server.url, files=sums, progress=False)
    assert (tmp_path / "0" / "my_notes.txt").read_text() == "mine"  # before: folder 0 replaced whole
    assert all((tmp_path / name).read_bytes() == data for name, data in members.items())


def test_download_of_a_damaged_zip_is_one_line_and_the_rerun_fetches_it_again(site, tmp_path, capsys, monkeypatch):
    server, members, sums = site
    good = dict(server.files)
    for name in ("mp3.zip.001", "mp3.zip.002", "mp3.zip.003"):
        server.files[name] = b"not a zip at all " * 50
    import rawtag.data.download as dl

    sums = {**sums, **{n: hashlib.sha256(server.files[n]).hexdigest() for n in good if n.startswith("mp3")}}
    monkeypatch.setattr(dl, "MTAT_FILES", sums)  # checksums that match the damaged parts
    code, out, err = cli(capsys, "download", "--root", tmp_path, "--base-url", server.url)
    line = one_line(err, "download")
    assert code == 2 and "do not form a readable zip" in line and "rerun `rawtag download`" in line
    assert "verified" not in out and (tmp_path / "mp3.zip.001.bad").exists()
    assert "mp3.zip.001" not in json.loads((tmp_path / "download.json").read_text())  # not kept as verified
    server.files.update(good)
    monkeypatch.setattr(dl, "MTAT_FILES", {**sums, **{n: hashlib.sha256(b).hexdigest() for n, b in good.items()}})
    code, out, _ = cli(capsys, "download", "--root", tmp_path, "--base-url", server.url)
    assert code == 0 and all((tmp_path / name).read_bytes() == data for name, data in members.items())


def test_download_tries_the_current_host_then_the_old_one(site, tmp_path, monkeypatch):
    import rawtag.data.download as dl

    assert dl.BASE_URLS[0].startswith("https://mirg.city.ac.uk/") and "mi.soi.city.ac.uk" in dl.BASE_URLS[1]
    server, members, sums = site
    monkeypatch.setattr(dl, "BASE_URLS", ("http://127.0.0.1:9/moved/", server.url))
    dl.download(tmp_path, files=sums, progress=False)
    assert (tmp_path / "0" / "clip_0_0.mp3").read_bytes() == members["0/clip_0_0.mp3"]
    monkeypatch.setattr(dl, "BASE_URLS", ("http://127.0.0.1:9/a/", "http://127.0.0.1:9/b/"))
    with pytest.raises(mtat.MTATError, match="cannot reach http://127.0.0.1:9/a/.*cannot reach http://127.0.0.1:9/b/"):
        dl.download(tmp_path / "other", files={"x.csv": "0" * 64}, progress=False)


def test_download_checks_where_a_resumed_reply_starts(site, tmp_path):
    from rawtag.data.download import download

    server, _, sums = site
    server.cut["mp3.zip.002"] = 1000
    with pytest.raises(mtat.MTATError, match="interrupted"):
        download(tmp_path, base_url=server.url, files=sums, progress=False)
    server.misplaced.add("mp3.zip.002")  # answers 206 from byte 0 to "bytes=1000-"
    with pytest.raises(mtat.MTATError, match="answered from byte 0; the partial download was discarded"):
        download(tmp_path, base_url=server.url, files=sums, progress=False)
    assert not (tmp_path / "mp3.zip.002.part").exists() and not (tmp_path / "mp3.zip.002").exists()
    server.misplaced.clear()
    download(tmp_path, base_url=server.url, files=sums, progress=False)
    assert (tmp_path / "mp3.zip.002").read_bytes() == server.files["mp3.zip.002"]


@pytest.mark.parametrize("fault", ["failure", "ctrl-c"])
def test_book_run_keeps_the_previous_executed_copy_until_the_new_one_is_whole(tmp_path, monkeypatch, fault):
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from rawtag import book

    chapter = book.chapters(ROOT)[0]
    target = tmp_path / chapter.name
    target.write_text("the good executed copy")

    def execute(source, output, **kw):
        nbformat.write(nbformat.v4.new_notebook(), output)  # half-way: the running copy exists
        if fault == "failure":
            raise PapermillExecutionError(0, 1, "x", "ValueError", "boom", [])
        raise KeyboardInterrupt
    monkeypatch.setattr(papermill, "execute_notebook", execute)
    with pytest.raises(PapermillExecutionError if fault == "failure" else KeyboardInterrupt):
        book._papermill(chapter, target, {}, "python3")
    assert target.read_text() == "the good executed copy"  # before: deleted before the run started
    assert not (tmp_path / f"{chapter.stem}.running.ipynb").exists()


def test_book_build_names_a_damaged_executed_chapter(tmp_path, capsys, monkeypatch):
    from rawtag import book

    monkeypatch.chdir(ROOT)
    executed = tmp_path / "executed"
    executed.mkdir()
    for chapter in book.chapters(ROOT):
        shutil.copy(chapter, executed / chapter.name)
    damaged = book.chapters(ROOT)[2]
    (executed / damaged.name).write_bytes((executed / damaged.name).read_bytes()[:500])  # cut short
    code, _, err = cli(capsys, "book", "build", "--executed", executed, "--out", tmp_path / "site")
    line = one_line(err, "book")
    assert code == 2 and f"(chapter {damaged.stem}) is not a readable notebook" in line
    assert f"rawtag book run --only {damaged.stem[:2]}" in line and "\x1b" not in line and len(line) < 600
    assert not (tmp_path / "site").exists()  # refused before jupyter-book ran
    assert book._last_error("ok\n\x1b[31mSphinx error:\x1b[0m\n  bad toc\nbuild finished\n") == "Sphinx error:"


@pytest.mark.parametrize("command", ["train", "prepare"])
def test_a_folder_being_written_is_locked_against_a_second_command(tiny, tone_prepared, tmp_path, capsys, command):
    from rawtag.atomic import locked

    src, _ = tiny
    out = tmp_path / "out"
    args = {"train": train_args(tone_prepared, out, 1),
            "prepare": ["prepare", "--source", src, "--out", out, "--top-k", 4, "--workers", 1]}[command]
    with locked(out, command):  # the first command, still running
        code, _, err = cli(capsys, *args)
        line = one_line(err, command)
        assert code == 2 and f"{out} is in use by another `rawtag {command}`" in line and "wait" in line
        assert not any(out.iterdir())  # before: both wrote, and the folder mixed two runs
    assert not out.exists()  # made by the lock, left empty: removed
    assert cli(capsys, *args)[0] == 0  # released: the command runs


def test_prepare_refuses_a_tag_column_listed_twice(tmp_path, capsys):
    src = tone_source(tmp_path / "src", clips=2, seconds=0.1)
    lines = _annotation_lines(src)
    lines[0] = lines[0].replace('"piano"', '"guitar"')  # before: piano's labels read as guitar's, clips dropped
    _prepare_refuses(capsys, src, lines, tmp_path / "p", "the tag column 'guitar' appears twice")


def test_prepare_never_reads_through_a_link_out_of_the_source_nor_echoes_bytes(tmp_path, capsys):
    src = tone_source(tmp_path / "src", clips=3, seconds=0.1)
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (src / "0" / "tone_000.wav").unlink()
    (src / "0" / "tone_000.wav").symlink_to(secret)  # a link out of the source folder
    (src / "1" / "tone_001.wav").write_text("user:x:1000:1000::/home/user\n" * 3)  # text inside it
    code, out, err = cli(capsys, "prepare", "--source", src, "--out", tmp_path / "p", "--top-k", 4)
    assert code == 0, err
    manifest = (tmp_path / "p" / prep.MANIFEST).read_text()
    assert "root:x" not in out + err + manifest and "user:x" not in out + err + manifest
    reasons = {s["path"]: s["reason"] for s in json.loads(manifest)["skipped"]}
    assert reasons["0/tone_000.wav"] == "a symbolic link to a file outside the source folder: not read"
    assert "the file holds text" in reasons["1/tone_001.wav"]


# `rawtag ARGS` whose worker processes (prepare's decoders, synth's renderers) block for 30 s
SLOW_WORKERS = r"""
import sys, time
import rawtag.data.prepare as prep
from rawtag.data.synth import builder
def slow(*args):
    time.sleep(30)
prep._decode_row = builder.write_clip = slow
from rawtag.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def _children(pid: int) -> set[int]:
    return {int(c) for task in Path(f"/proc/{pid}/task").glob("*/children") for c in task.read_text().split()}


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill -9", "SIGTERM"])
@pytest.mark.parametrize("command", ["prepare", "synth"])
def test_workers_die_with_a_killed_command(tiny, tmp_path, command, sig):
    import time

    args = {"prepare": ["prepare", "--source", tiny[0], "--out", tmp_path / "p", "--top-k", 4, "--workers", 2],
            "synth": ["synth", "--out", tmp_path / "s", "--clips", 4, "--workers", 2]}[command]
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WORKERS, *map(str, args)], cwd=ROOT, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while len(workers := _children(proc.pid)) < 2:  # both workers started (and busy)
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)
    deadline = time.monotonic() + 5
    while any(_alive(w) for w in workers):  # before: orphaned, blocked (prepare) or writing (synth) for ever
        assert time.monotonic() < deadline, f"workers left behind: {[w for w in workers if _alive(w)]}"
        time.sleep(0.05)
    if sig == signal.SIGTERM:  # handled as Ctrl-C: before, it printed nothing
        assert proc.returncode == 130
        assert one_line(err, command) == f"rawtag {command}: interrupted; run the same command again to resume"


def _sleep(seconds):
    import time

    time.sleep(seconds)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_sigterm_while_a_pool_starts_a_worker_leaves_none_behind(monkeypatch):
    """Under load, SIGTERM's handler ran just after a worker was forked and before the pool had recorded
    it: that worker was not stopped, and the command's exit waited for it for ever (issue 23, item 6)."""
    import multiprocessing.context
    import time

    from rawtag.concurrent import finished, sigterm_is_interrupt, worker_pool

    start = multiprocessing.context.ForkProcess.start
    workers = []  # the pids of the pool's workers, as they start

    def start_then_terminated(process):
        start(process)
        workers.append(process.pid)
        os.kill(os.getpid(), signal.SIGTERM)  # its handler runs at the next line of Python: inside the pool

    monkeypatch.setattr(multiprocessing.context.ForkProcess, "start", start_then_terminated)
    with pytest.raises(KeyboardInterrupt), sigterm_is_interrupt(), worker_pool(2) as pool:
        for _ in finished(pool, _sleep, [(20,)] * 4, 4):
            pass
    assert workers  # at least one started (and was told to stop while starting)
    deadline = time.monotonic() + 5
    while any(_alive(w) for w in workers):
        assert time.monotonic() < deadline, f"workers left behind: {[w for w in workers if _alive(w)]}"
        time.sleep(0.05)


def test_a_worker_forked_before_it_reset_sigterm_exits_on_it():
    """A worker still holding the command's SIGTERM handler (forked a moment before) exits on SIGTERM;
    before, it raised KeyboardInterrupt in the fork hook, which Python drops, and lived on as a worker."""
    import multiprocessing

    from rawtag.concurrent import sigterm_is_interrupt

    with sigterm_is_interrupt():
        child = multiprocessing.get_context("fork").Process(target=signal.getsignal(signal.SIGTERM),
                                                             args=(signal.SIGTERM, None))
        child.start()
        child.join(10)
    assert child.exitcode == 128 + signal.SIGTERM


def _die(*args):
    os.kill(os.getpid(), signal.SIGKILL)  # a worker killed by the system (out of memory)


@pytest.mark.parametrize("command", ["prepare", "synth"])
def test_a_killed_worker_is_one_line_with_the_resume_hint(tiny, tmp_path, capsys, monkeypatch, command):
    from rawtag.data.synth import builder

    monkeypatch.setattr(prep, "_decode_row", _die)
    monkeypatch.setattr(builder, "write_clip", _die)
    args = {"prepare": ["prepare", "--source", tiny[0], "--out", tmp_path / "p", "--top-k", 4, "--workers", 2],
            "synth": ["synth", "--out", tmp_path / "s", "--clips", 2, "--workers", 2]}[command]
    code, _, err = cli(capsys, *args)
    line = one_line(err, command)  # before: "BrokenProcessPool ... a bug"
    assert code == 2 and "process died (killed by the system" in line and "fewer --workers" in line
    assert "resume" in line and "a bug" not in line


def test_a_run_records_its_data_resolved_and_knows_it_by_any_path(tone_prepared, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tone_prepared.parent)
    r = tmp_path / "r"
    assert cli(capsys, *train_args(tone_prepared.name, r, 1))[0] == 0  # --data as typed: relative
    assert json.loads((r / "config.json").read_text())["data"] == str(tone_prepared.resolve())
    monkeypatch.chdir(tmp_path)  # another folder: before, the relative path no longer led to the set
    code, out, err = cli(capsys, "evaluate", "--run", r)
    assert code == 0 and out.startswith("valid: macro ROC-AUC"), err
    before = digest(r)
    code, _, err = cli(capsys, *train_args(tone_prepared.resolve(), r, 1))  # the same set, absolute: this run
    assert code == 0 and digest(r) == before, err  # before: refused as "other settings (data)"
    code, _, err = cli(capsys, *train_args(tone_prepared, r, 1, "--seed", 5))
    line = one_line(err, "train")
    assert code == 2 and "other settings (train.seed); to keep it, rerun with its own settings" in line
    assert "--force would delete its 1 trained epoch(s)" in line and digest(r) == before


@pytest.mark.parametrize("damage", ["truncated", "deleted"])
def test_a_damaged_prepared_set_is_named_and_prepared_again(tiny, tmp_path, capsys, damage):
    src, whole = tiny
    out = copy_run(whole, tmp_path / "p")
    if damage == "truncated":
        os.truncate(out / prep.CLIPS_FILE, os.path.getsize(out / prep.CLIPS_FILE) // 2)
    else:
        (out / "labels.npy").unlink()
    what = "clips.int16 is damaged (" if damage == "truncated" else "labels.npy is missing"
    code, _, err = cli(capsys, "train", "--data", out, "--out", tmp_path / "r", "--profile", "smoke")
    line = one_line(err, "train")  # before: "mmap length is greater than file size"
    assert code == 2 and what in line and f"--out {out} --force" in line and not (tmp_path / "r").exists()
    code, printed, _ = cli(capsys, "prepare", "--source", src, "--out", out, "--top-k", 4, "--workers", 1)
    assert code == 0 and f"{what}" in printed and "preparing it again" in printed  # before: "nothing to do"
    assert digest(out) == digest(whole)


DAMAGED_JSON = {"cut short": '{"params": {"format": 1', "a list": "[1, 2]", "an empty object": "{}"}


@pytest.mark.parametrize("content", list(DAMAGED_JSON), ids=list(DAMAGED_JSON))
@pytest.mark.parametrize("record", ["manifest.json", "config.json", "download.json"])
def test_a_damaged_record_is_one_line_naming_it(tiny, run, tone_prepared, tmp_path, capsys, record, content):
    if record == "manifest.json":
        folder = copy_run(tiny[1], tmp_path / "p")
        args = ["train", "--data", folder, "--out", tmp_path / "r", "--profile", "smoke"]
    elif record == "config.json":
        folder = copy_run(run, tmp_path / "r")
        args = train_args(tone_prepared, folder, 3)  # resume a run whose config is damaged
    else:
        folder = tmp_path / "mtat"
        folder.mkdir()
        args = ["download", "--root", folder, "--base-url", "http://127.0.0.1:9/"]
    (folder / record).write_text(DAMAGED_JSON[content])
    before = digest(folder)
    command = args[0]
    code, _, err = cli(capsys, *args)
    line = one_line(err, command)  # before: raw JSON messages, or KeyError / AttributeError "a bug"
    assert code == 2 and "a bug" not in line and digest(folder) == before
    if record == "config.json" and content != "an empty object":
        assert "no readable config.json" in line  # its settings are unknown: the checkpoints are kept
    elif record == "manifest.json" or content != "an empty object":  # {} is a download that has not begun
        assert str(folder / record) in line and "is damaged" in line


def test_a_diverging_run_stops_at_its_first_non_finite_loss(tone_prepared, tmp_path, capsys):
    r = tmp_path / "r"
    code, _, err = cli(capsys, *train_args(tone_prepared, r, 2, "--lr", "1e30", "--batch-size", "2"))
    line = one_line(err, "train")  # before: a whole epoch, then scikit-learn's "Input contains NaN"
    assert code == 2 and "training diverged" in line and "of epoch 1 is nan with learning rate 1e+30" in line
    assert "lower --lr (e.g. 1e+29)" in line and not (r / "checkpoints" / "last.pt").exists()
    code, _, err = cli(capsys, *train_args(tone_prepared, tmp_path / "one", 2, "--lr", "1e30"))  # 1 batch an epoch
    line = one_line(err, "train")
    assert code == 2 and "training diverged: the validation logits' largest value of epoch 1 is" in line
    for bad in ("nan", "-1", "0", "inf"):
        with pytest.raises(SystemExit) as e:
            main(train_args(tone_prepared, tmp_path / bad, 1, "--lr", bad))
        assert e.value.code == 2 and f"argument --lr: must be a positive finite number, e.g. 0.001, got {bad}" in \
            capsys.readouterr().err
        assert not (tmp_path / bad).exists()


@pytest.mark.parametrize("fault,code", [("bad input", 2), ("interrupt", 130), ("bug", 1)])
def test_rawtag_traceback_shows_every_traceback(tmp_path, capsys, monkeypatch, fault, code):
    import rawtag.data.mtat

    def fail(*args):
        raise {"interrupt": KeyboardInterrupt, "bug": KeyError}[fault]("where")
    if fault != "bad input":
        monkeypatch.setattr(rawtag.data.mtat, "read_annotations", fail)
    args = ["splits", "--annotations", tmp_path / "missing.csv", "--json", tmp_path / "s.json"]
    got, _, err = cli(capsys, *args)
    assert got == code and "Traceback" not in err  # by default: one line
    monkeypatch.setenv("RAWTAG_TRACEBACK", "1")
    got, _, err = cli(capsys, *args)
    lines = err.strip().splitlines()  # before: nothing more for bad input, nor for an interruption
    assert got == code and lines[0] == "Traceback (most recent call last):" and lines[-1].startswith("rawtag splits: ")


def test_audio_faults_are_named_and_decoder_notes_stay_off_stderr(tmp_path, capfd, monkeypatch):
    import soundfile as sf

    x = (np.random.default_rng(0).standard_normal(16000) * 0.1).astype(np.float32)
    sf.write(tmp_path / "a.mp3", x, 16000)
    blob = (tmp_path / "a.mp3").read_bytes()
    (tmp_path / "long.mp3").write_bytes(blob + blob[len(blob) // 2:])  # its Xing header's size is now wrong
    assert len(audio.load(tmp_path / "long.mp3", 16000)) > 0
    assert capfd.readouterr().err == ""  # before: libmpg123's "Warning: Xing stream size off by more than 1%"
    x[100:103] = [np.nan, np.inf, -np.inf]
    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(audio.AudioError, match=r"nan.wav: not valid audio: 3 of its 16,000 samples are NaN or inf"):
        audio.load(tmp_path / "nan.wav", 16000)  # before: zeroed, with numpy's RuntimeWarning on stderr
    real_open = open

    def denied(path, *args, **kw):
        if str(path).endswith("a.mp3"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, *args, **kw)
    monkeypatch.setattr(audio, "open", denied, raising=False)  # as root, chmod 000 would not stop a read
    with pytest.raises(audio.AudioError, match=r"a.mp3: cannot read it \(permission denied\); check its permissions"):
        audio.load(tmp_path / "a.mp3", 16000)  # before: "cannot decode (System error.)"
    assert capfd.readouterr().err == ""


def test_chapter_parameters_are_checked_before_a_chapter_runs():
    from rawtag.book import chapters
    from rawtag.profiles import check_parameters

    for chapter in chapters(ROOT):  # every chapter's own defaults pass
        cells = json.loads(chapter.read_text())["cells"]
        source = next("".join(c["source"]) for c in cells if "parameters" in c["metadata"].get("tags", []))
        defaults = {}
        exec(source, {}, defaults)
        check_parameters(defaults)
    with pytest.raises(ValueError, match=r"^chapter parameter length = 'abc': expected a whole number of at least 1 "
                                         r"\(e.g. `-p length 1`\)$"):
        check_parameters({"profile": "smoke", "length": "abc"})  # papermill -p length abc
    for bad, expected in [({"profile": "huge"}, "one of smoke, quick, paper"), ({"seeds": 0}, "(or None)"),
                          ({"time_pool": "median"}, "one of max, mean"), ({"ablation": "no"}, "True or False")]:
        with pytest.raises(ValueError, match=re.escape(expected)):
            check_parameters(bad)


def test_prepare_of_no_clip_is_refused(tiny, tmp_path):
    with pytest.raises(PrepareError, match=r"only=\[\] keeps no clip: nothing to prepare"):
        prepare(tiny[0], tmp_path / "p", top_k=4, workers=1, progress=False, only=[])
    assert not (tmp_path / "p").exists()  # before: a set of 0 clips that nothing could use

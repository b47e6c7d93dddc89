"""Training and evaluation speed: rawtag's loop and layers against today's layers and the research-code way.

    python benchmarks/train_bench.py [--clips 300] [--steps 30] [--repeats 3] [--device auto]
                                     [--root /tmp/rawtag-bench]

Same model, same batch size (10, the paper's), same clips, each measured in its own process:
- baseline: one float32 `.npy` per clip (written beforehand, untimed), `np.load` per item in a `Dataset`,
  a `DataLoader` with one worker, the model (PyTorch's layers) followed by `Sigmoid`, `BCELoss`, Adam;
- rawtag before issue 14 ("before"): `Batches` over the prepared int16 memmap as it read then (a
  background thread, one fancy-indexing call per batch into a new array, a new float tensor per batch;
  int16 to float and Eq. (1) on the device), `BCEWithLogitsLoss` on logits, Adam, and the model built from
  PyTorch's `nn.Conv1d` / `nn.MaxPool1d` (`rawtag.models.paper.torch_layers`);
- rawtag, fast layers, data path before: the fast layers (below) with that data path, to tell the two
  changes apart;
- rawtag, fast: the loop as `rawtag.train.fit` runs it now: `Batches` with each clip one contiguous copy
  into buffers allocated once and one recycled float buffer (on a CPU no reader thread: the kernel is asked
  to read the next batch ahead), the models as `build_model` makes them (`FrameConv`, the time-major
  `Conv1d` / `MaxPool1d`; equal outputs and gradients) and fused Adam; for the improved CNN also with
  bfloat16 autocast (`TrainConfig(precision="bf16")`), where the device computes bfloat16 in hardware
  (`rawtag.devices.bf16_is_native`; emulated, it is about 35x slower).
For the base CNN at the five Table 1 settings and the improved CNN: training clips/s (after 3 warm-up
steps), the same steps on one batch already in memory (the model and optimizer without the data path),
evaluation clips/s over the validation split, and each process's peak memory.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

SETTINGS = [("base", 1024, 1024), ("base", 1024, 512), ("base", 512, 512), ("base", 512, 256), ("base", 256, 256),
            ("improved", 256, 256)]


def write_npy(prepared: Path, out: Path) -> None:
    """The baseline's cache: each clip of train and valid, normalized as rawtag does, as float32 [10, 1, 34950]."""
    import numpy as np

    from rawtag.data import normalize
    from rawtag.data.prepare import PreparedSet

    if (out / "done").exists():
        return
    data = PreparedSet(prepared)
    scale, offset = normalize.affine("dataset", data.rowstats, data.rows("train"))
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid"):
        for row in data.rows(split):
            x = normalize.apply(np.asarray(data.clips[row]), scale[row], offset[row])
            np.save(out / f"{row}.npy", x.reshape(10, 1, -1))
    (out / "done").write_text("")


LOOPS = [("baseline", "torch", "fp32"), ("old-data", "torch", "fp32"), ("old-data", "fast", "fp32"),
         ("rawtag", "fast", "fp32")]
NAMES = {"baseline": "baseline", "old-data": "rawtag, data path before", "rawtag": "rawtag"}


def batches_before(data, split: str, **options):
    """`Batches` with the data path it had before issue 14 (see the module's docstring)."""
    import numpy as np
    import torch

    from rawtag.data.audio import model_input
    from rawtag.data.batches import Batch, Batches

    class Before(Batches):
        def _read(self, rows, starts=None, buffer=None):
            order = np.argsort(rows)  # read in file order, then put back in batch order
            out = np.empty((len(rows), self.data.clips.shape[1]), np.int16)
            out[order] = self.data.clips[rows[order]]
            return out

        def _to_batch(self, rows, raw):
            pin = self.device.type == "cuda"
            x = torch.from_numpy(raw)
            x = (x.pin_memory() if pin else x).to(self.device, non_blocking=pin).float()
            index = torch.from_numpy(rows)
            x.mul_(self.scale[index].to(self.device)[:, None]).add_(self.offset[index].to(self.device)[:, None])
            return Batch(model_input(x, self.layout), self.labels[index].to(self.device), rows)

    return Before(data, split, prefetch=2, **options)
BF16 = ("rawtag", "fast", "bf16")  # the improved CNN only (issue 14, item 4)


def run_one(method: str, layers: str, precision: str, model_name: str, length: int, stride: int, prepared: Path,
            npy: Path, steps: int, device: str, warmup: int = 3, prefetch: int | None = None) -> dict:
    import numpy as np
    import torch
    from torch import nn

    from rawtag.data.batches import Batches
    from rawtag.data.prepare import PreparedSet
    from rawtag.devices import pick_device
    from rawtag.inference import autocast, predict
    from rawtag.models import build_model
    from rawtag.models.paper import torch_layers

    torch.manual_seed(0)
    dev = pick_device(device)
    data = PreparedSet(prepared)
    core = build_model(model_name, length=length, stride=stride, n_tags=len(data.tags)).to(dev)
    if layers == "torch":
        core = torch_layers(core)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True

    if method in ("rawtag", "old-data"):
        model, loss_fn = core, nn.BCEWithLogitsLoss()
        if method == "rawtag":  # as fit does
            train = Batches(data, "train", batch_size=10, shuffle=True, device=dev, recycle=True, prefetch=prefetch)
            valid = Batches(data, "valid", batch_size=10, device=dev, recycle=True, prefetch=prefetch)
        else:
            train = batches_before(data, "train", batch_size=10, shuffle=True, device=dev)
            valid = batches_before(data, "valid", batch_size=10, device=dev)

        def batches():
            epoch = 0
            while True:
                train.set_epoch(epoch)
                for b in train:
                    yield b.x, b.y
                epoch += 1

        def evaluate():
            return len(predict(core, valid, precision)[2])
    else:
        model, loss_fn = nn.Sequential(core, nn.Sigmoid()), nn.BCELoss()

        class PerClipFiles(torch.utils.data.Dataset):
            def __init__(self, rows):
                self.rows = rows

            def __len__(self):
                return len(self.rows)

            def __getitem__(self, i):
                row = self.rows[i]
                labels = torch.from_numpy(data.labels[row].astype(np.float32))
                return torch.from_numpy(np.load(npy / f"{row}.npy")), labels

        train_loader = torch.utils.data.DataLoader(PerClipFiles(data.rows("train")), batch_size=10, shuffle=True,
                                                   num_workers=1)
        valid_loader = torch.utils.data.DataLoader(PerClipFiles(data.rows("valid")), batch_size=10, num_workers=1)

        def batches():
            while True:
                for x, y in train_loader:
                    yield x.to(dev), y.to(dev)

        def evaluate():
            model.eval()
            n = 0
            with torch.no_grad():
                for x, _ in valid_loader:
                    model(x.to(dev))
                    n += len(x)
            return n

    fused = layers == "fast" and dev.type in ("cpu", "cuda")  # as rawtag.train.fit since issue 14
    optimizer = torch.optim.Adam(core.parameters(), lr=1e-3, fused=fused)
    model.train()
    stream = batches()

    def step(batch=None):
        x, y = batch or next(stream)
        with autocast(dev, precision):
            out = model(x)
        loss = loss_fn(out.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return len(x)

    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    clips = sum(step() for _ in range(steps))
    if cuda:
        torch.cuda.synchronize()
    train_seconds = time.perf_counter() - started
    batch = next(stream)  # the same steps on one batch already in memory: the model and optimizer alone
    started = time.perf_counter()
    clips_in_memory = sum(step(batch) for _ in range(steps))
    if cuda:
        torch.cuda.synchronize()
    step_seconds = time.perf_counter() - started
    started = time.perf_counter()
    evaluated = evaluate()
    if cuda:
        torch.cuda.synchronize()
    eval_seconds = time.perf_counter() - started
    return {"train_clips_per_s": clips / train_seconds, "step_clips_per_s": clips_in_memory / step_seconds,
            "eval_clips_per_s": evaluated / eval_seconds,
            "gpu_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None, "device": str(dev)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=int, default=300, help="synthetic clips to prepare")
    p.add_argument("--steps", type=int, default=30, help="timed training steps (batches of 10) per measurement")
    p.add_argument("--improved-steps", type=int, default=None, help="timed steps for the improved CNN")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before each measurement (default 3)")
    p.add_argument("--device", default="auto")
    p.add_argument("--only", choices=["base", "improved"], help="measure one model only")
    p.add_argument("--settings", nargs="+", metavar="L/S", default=None,
                   help="the base CNN's length/stride settings to measure (default: all five of Table 1)")
    p.add_argument("--repeats", type=int, default=1, help="measure each loop this many times, interleaved, and "
                                                          "report each speed's best run (for shared, noisy machines)")
    p.add_argument("--root", default="/tmp/rawtag-bench")
    p.add_argument("--prefetch", type=int, default=None, help="with --one rawtag: batches a reader thread keeps "
                                                               "ready (default: Batches' own, 0 on a CPU)")
    p.add_argument("--one", nargs=6, metavar=("METHOD", "LAYERS", "PRECISION", "MODEL", "LENGTH", "STRIDE"),
                   help=argparse.SUPPRESS)
    a = p.parse_args()
    known = [f"{length}/{stride}" for model, length, stride in SETTINGS if model == "base"]
    if a.settings and set(a.settings) - set(known):
        p.error(f"unknown --settings {' '.join(sorted(set(a.settings) - set(known)))}; choose from {' '.join(known)}")
    root = Path(a.root)
    prepared, npy = root / f"prepared-{a.clips}", root / f"npy-{a.clips}"
    if a.one:
        method, layers, precision, model, length, stride = a.one
        common.report(run_one(method, layers, precision, model, int(length), int(stride), prepared, npy, a.steps,
                              a.device, a.warmup, a.prefetch))
        return
    from rawtag.data.prepare import prepare

    prepare(common.synthetic_source(root, a.clips), prepared, progress=False)
    write_npy(prepared, npy)
    from rawtag.devices import bf16_is_native, pick_device

    bf16 = bf16_is_native(pick_device(a.device))
    print(f"machine: {common.machine()}")
    if not bf16:
        print("no bfloat16 row: this device has no bfloat16 hardware (emulated, it is about 35x slower)")
    print(f"data: {a.clips} synthetic clips, prepared; batch 10; {a.steps} timed steps after {a.warmup} warm-up "
          f"(improved: {a.improved_steps or a.steps}); each speed the best of {a.repeats} interleaved run(s)\n")
    rows = []
    for model, length, stride in SETTINGS:
        if a.only and model != a.only or model == "base" and a.settings and f"{length}/{stride}" not in a.settings:
            continue
        steps = str(a.improved_steps or a.steps) if model == "improved" else str(a.steps)
        extra = ["--clips", str(a.clips), "--steps", steps, "--warmup", str(a.warmup), "--device", a.device,
                 "--root", a.root]
        loops = LOOPS + [BF16] if model == "improved" and bf16 else LOOPS
        runs = {loop: [] for loop in loops}
        for _ in range(a.repeats):  # interleaved, so that a busy spell on a shared machine slows every loop alike
            for loop in loops:
                runs[loop].append(common.measure_in_subprocess(__file__, [*loop, model, str(length), str(stride),
                                                                         *extra]))
        speeds = ("train_clips_per_s", "step_clips_per_s", "eval_clips_per_s")
        figs = {loop: {**max(r, key=lambda f: f["train_clips_per_s"]), **{k: max(f[k] for f in r) for k in speeds}}
                for loop, r in runs.items()}  # each speed from its best run
        baseline, before = figs[LOOPS[0]]["train_clips_per_s"], figs[LOOPS[1]]["train_clips_per_s"]
        for (method, layers, precision), f in figs.items():
            rows.append([f"{model} {length}/{stride}", NAMES[method], f["train_clips_per_s"],
                         f"{f['train_clips_per_s'] / baseline:.2f}x", f["eval_clips_per_s"],
                         f"{layers}, {precision}" + (" (before)" if (method, layers) == LOOPS[1][:2] else ""),
                         f"{f['train_clips_per_s'] / before:.2f}x", f["step_clips_per_s"], f["peak_rss_mib"],
                         f["anon_mib"] if f["anon_mib"] is not None else "-",
                         f"{f['gpu_peak_mib']:.0f}" if f["gpu_peak_mib"] is not None else "-", f["device"]])
    print(common.table(["model", "loop", "train clips/s", "train vs baseline", "eval clips/s", "layers",
                        "train vs before", "step clips/s, batch in memory", "peak RSS MiB", "anon MiB at end",
                        "GPU peak MiB", "device"], rows))
    print("\nbefore: rawtag's loop before issue 14: its data path (a new array and a new float tensor per batch, "
          "a reader thread) with PyTorch's nn.Conv1d / nn.MaxPool1d and plain Adam; 'data path before' with fast "
          "layers tells the two changes apart; fast: the layers build_model makes now, with fused Adam. 'step "
          "clips/s' times the same training steps on one batch already in memory: the model and optimizer without "
          "the data path. peak RSS counts the pages of the memory-mapped prepared set that were read (file-backed, "
          "dropped by the kernel under pressure); 'anon MiB' is the process's own memory.")


if __name__ == "__main__":
    main()

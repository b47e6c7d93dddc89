"""Training batches straight from the prepared memmap: int16 rows -> device -> float -> Eq. (1).

Taught in chapter 03 (base CNN). A batch is x float32 [B, 10, 1, 34950] (the paper's models; `layout`
"waveform" gives [B, 1, L] for the sample-level models of chapter 07) and y float32 [B, K]. Each clip is one
contiguous copy from the memmap into int16 buffers allocated once (no per-item decoding, no Python work per
sample); conversion and normalization happen on the device. On a GPU a background thread keeps `prefetch`
batches ready. On a CPU the batch is read when asked for, while the kernel is asked to read the next one
from disk ahead of time: a reader thread would take a core from the model's two threads (measured no faster
for training, and slower for evaluation: benchmarks/README.md). With `recycle=True` (the training and
evaluation loops, which drop a batch before asking for the next) each batch's x is written into the same
float buffer on a CPU, instead of a fresh 14 MB tensor that the allocator gives back to the OS and the
kernel maps and zeroes again for the next batch. With `crop`, each clip gives one random window of `crop`
samples instead (chapter 07: one 59,049-sample segment per clip and step), drawn by a generator seeded with
(seed, epoch): a resumed run reads the same windows.

Chapter: 03_base_cnn
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass

import numpy as np
import torch

from . import normalize
from .audio import CLIP_SAMPLES, INPUTS, model_input
from .prepare import PreparedSet


@dataclass
class Batch:
    """One batch: model input `x`, labels `y` and the prepared set's `rows` they came from.

    Chapter: 03_base_cnn
    """
    x: torch.Tensor  # float32 [B, 10, 1, 34950], or [B, 1, L] for layout "waveform"
    y: torch.Tensor  # float32 [B, K]
    rows: np.ndarray  # the prepared set's row of each clip


def subset(rows: np.ndarray, max_clips: int | None) -> np.ndarray:
    """The first `max_clips` of a fixed (seed 0) shuffle of `rows`, sorted: the same clips for every run.

    Chapter: 03_base_cnn
    """
    if max_clips is None or max_clips >= len(rows):
        return rows
    if max_clips < 1:
        raise ValueError(f"max_clips must be at least 1, got {max_clips}")
    return np.sort(np.random.default_rng(0).permutation(rows)[:max_clips])


class Batches:
    """Iterate over one split in batches; `set_epoch(e)` reseeds the shuffle (seed, epoch).

    Chapter: 03_base_cnn
    """

    def __init__(self, data: PreparedSet, split: str, batch_size: int = 10, *, shuffle: bool = False,
                 seed: int = 0, normalization: str = "dataset", max_clips: int | None = None,
                 in_memory: bool = False, device: str | torch.device = "cpu", prefetch: int | None = None,
                 rows: np.ndarray | None = None, shard: tuple[int, int] = (0, 1), layout: str = "subclips",
                 crop: int | None = None, recycle: bool = False):
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        rank, world = shard
        if not 0 <= rank < world or batch_size < world:
            raise ValueError(f"shard {rank} of {world} needs 0 <= rank < world <= batch size ({batch_size})")
        self.shard = shard
        length = data.clips.shape[1]
        if crop is not None and not 1 <= crop <= length:
            raise ValueError(f"a crop of {crop:,} samples does not fit in clips of {length:,}")
        if layout == "subclips" and crop is None and length != CLIP_SAMPLES:
            raise ValueError(f"{data.path} holds clips of {length:,} samples ({data.sample_rate:,} Hz); the paper's "
                             f"models take 10 sub-clips of 34,950 at 12,000 Hz: use a set prepared at 12,000 Hz")
        if layout not in INPUTS:  # here, not in the loop
            raise ValueError(f"unknown model input {layout!r}; choose one of {', '.join(INPUTS)}")
        self.layout, self.crop = layout, crop
        self.data, self.batch_size, self.shuffle, self.seed = data, batch_size, shuffle, seed
        self.rows = subset(data.rows(split) if rows is None else np.asarray(rows), max_clips)
        self.device = torch.device(device)
        # a reader thread on a GPU; on a CPU it takes a core from the model's threads (measured no faster)
        self.prefetch = (2 if self.device.type == "cuda" else 0) if prefetch is None else prefetch
        scale, offset = normalize.affine(normalization, data.rowstats, data.rows("train"))
        self.scale, self.offset = torch.from_numpy(scale), torch.from_numpy(offset)
        self.labels = torch.from_numpy(data.labels.astype(np.float32))
        self.cache = None
        if in_memory:  # one read of the whole subset; rows index into it through `position`
            self.cache = np.asarray(data.clips[self.rows])
            self.position = np.full(len(data.clips), -1, np.int64)
            self.position[self.rows] = np.arange(len(self.rows))
        self.recycle = recycle and self.device.type == "cpu"
        self._x = None  # the float buffer that `recycle` writes each batch into
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self):
        return len(self._chunks(self.rows, None))

    def _chunks(self, order: np.ndarray, starts: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """The batches' (rows, crop starts); under `shard=(rank, world)` this process's share of each batch.
        When training (shuffled), a final batch smaller than `world` is dropped so that every process takes
        the same number of optimizer steps; when evaluating, every clip is kept and empty shares are skipped."""
        rank, world = self.shard
        chunks = [(order[i:i + self.batch_size], None if starts is None else starts[i:i + self.batch_size])
                  for i in range(0, len(order), self.batch_size)]
        shares = [(r[rank::world], None if s is None else s[rank::world]) for r, s in chunks
                  if not (self.shuffle and len(r) < world)]
        return [share for share in shares if len(share[0])]

    def order(self) -> np.ndarray:
        if not self.shuffle:
            return self.rows
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.rows)

    def crop_starts(self, n: int) -> np.ndarray | None:
        """Where each of the epoch's `n` clips (in `order()`) is cropped: seeded by (seed, epoch), so the
        same on every run and on resume; None without `crop`."""
        if self.crop is None:
            return None
        rng = np.random.default_rng([self.seed, self.epoch, 1])  # its own stream: the shuffle stays as it was
        return rng.integers(0, self.data.clips.shape[1] - self.crop + 1, size=n)

    def _read(self, rows: np.ndarray, starts: np.ndarray | None = None, buffer: np.ndarray | None = None
              ) -> np.ndarray:
        """The batch's int16 samples [len(rows), length or crop], written into `buffer`'s first rows if given."""
        width = self.data.clips.shape[1] if starts is None else self.crop
        out = np.empty((len(rows), width), np.int16) if buffer is None else buffer[:len(rows)]
        source = self.cache if self.cache is not None else self.data.clips
        index = self.position[rows] if self.cache is not None else rows
        starts = np.zeros(len(rows), np.int64) if starts is None else starts
        # clip by clip in file order: one contiguous copy each (faster than one fancy-indexing call, which
        # builds a temporary array and holds the interpreter's lock while it copies)
        for k in np.argsort(index, kind="stable").tolist():
            out[k] = source[index[k], starts[k]:starts[k] + width]
        return out

    def _to_batch(self, rows: np.ndarray, raw: np.ndarray) -> Batch:
        pin = self.device.type == "cuda"
        x = torch.from_numpy(raw)
        x = (x.pin_memory() if pin else x).to(self.device, non_blocking=pin)
        index = torch.from_numpy(rows)
        if self.recycle:  # into the one float buffer (allocated at the largest batch), not a new tensor
            if self._x is None or self._x.shape[0] < len(x) or self._x.shape[1:] != x.shape[1:]:
                self._x = torch.empty((max(len(x), self._share_size()), *x.shape[1:]))
            x = self._x[:len(x)].copy_(x)
        else:
            x = x.float()  # a new float tensor
        # Eq. (1), in place, with no temporaries
        x.mul_(self.scale[index].to(self.device)[:, None]).add_(self.offset[index].to(self.device)[:, None])
        return Batch(model_input(x, self.layout), self.labels[index].to(self.device), rows)

    def _share_size(self) -> int:
        """The most clips one batch of this process holds."""
        rank, world = self.shard
        return len(range(rank, self.batch_size, world))

    def __iter__(self):
        order = self.order()
        chunks = self._chunks(order, self.crop_starts(len(order)))
        width = self.data.clips.shape[1] if self.crop is None else self.crop
        # int16 buffers, reused in turn: with a reader thread `prefetch` batches queued, one being read and one
        # being converted; without, one
        count = self.prefetch + 2 if self.prefetch >= 1 else 1
        buffers = [np.empty((self._share_size(), width), np.int16) for _ in range(count)]
        if self.prefetch < 1:
            for k, (rows, starts) in enumerate(chunks):
                if k + 1 < len(chunks) and self.cache is None:
                    self.data.will_need(chunks[k + 1][0])  # the kernel reads the next batch while this one trains
                yield self._to_batch(rows, self._read(rows, starts, buffers[0]))
            return
        ready: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def reader():
            try:
                for k, (rows, starts) in enumerate(chunks):
                    if stop.is_set():
                        return
                    ready.put((rows, self._read(rows, starts, buffers[k % len(buffers)])))
                ready.put(None)
            except BaseException as e:  # hand the error to the consumer
                ready.put(e)

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield self._to_batch(*item)
        finally:
            stop.set()
            while thread.is_alive():  # drain so the reader can finish
                try:
                    ready.get(timeout=0.1)
                except queue.Empty:
                    pass
            thread.join()

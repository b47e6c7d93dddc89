"""Beyond the paper (its conclusion's pointers): the sample-level CNN of Lee et al. (2017), SE and ReSE-2
blocks with multi-level feature aggregation (Kim et al., 2018), and the paper's base CNN on a log-mel
spectrogram, to recreate Dieleman & Schrauwen's (2014) spectrogram-versus-raw comparison.

The sample-level models are built as in their authors' code (checked against tae-jun/sample-cnn and
tae-jun/resemul) and by default read audio with the segment protocol of the sample-level papers,
`protocol="segment"`:
- audio at 22,050 Hz (`sample_rate`; prepare a set with `rawtag prepare --sample-rate 22050`), where a
  59,049-sample segment (3^10) is 2.7 s;
- training on segments, not clips: each step reads ONE random 59,049-sample segment of each clip
  (`train_crop`; drawn by a generator seeded by (seed, epoch), so a resumed run sees the same segments).
  This is how Won et al.'s code samples; Lee et al.'s and Kim et al.'s code instead cut each clip into its
  10 consecutive (centred) segments once and train on every one of them as a separate example;
- evaluation: the clip is covered by ceil(L / 59,049) evenly spaced segments (11 at 22,050 Hz) and their
  sigmoid probabilities are averaged, as all three do (Lee and Kim over the 10 consecutive segments, Won
  over 16 chunks); the model returns the logit of that mean, so AUCs and losses read as usual.
`protocol="logit_mean"` is this project's earlier variant, in no paper: training and evaluation on every
whole consecutive segment of the clip, the clip's logits the mean of theirs.

All models here train with the book's optimizer (Adam, batch 10, BCE; each model's own learning rate) so
that chapter 07 compares architectures, not optimizers (Lee et al. and Kim et al. used SGD with Nesterov
momentum).

Chapter: 07_beyond
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .paper import PAPER_IMPROVED, PAPER_TABLE_1, FrameCNN
from .registry import register

SEGMENT = 3 ** 10  # 59,049 samples
SAMPLE_RATE = 22_050  # Lee et al.'s and Kim et al.'s audio
SAMPLE_WIDTHS = (128, 128, 256, 256, 256, 256, 256, 256, 512)  # the 3^9 model's blocks, as in both papers
PROTOCOLS = ("segment", "logit_mean")
# Published MTAT top-50 ROC-AUC, each beside the network it belongs to; quoted, never measured here.
PUBLISHED_MTAT = {
    "base": (PAPER_TABLE_1[(256, 256)], "Roy (Bristol), Table 1, 256/256; paper split"),
    "improved": (PAPER_IMPROVED, "Roy (Bristol), section IX; paper split"),
    "samplecnn": (0.9055, "Lee et al. 2017, 3⁹ model"),
    "se": (0.9111, "Kim et al. 2018, SE + multi-level aggregation"),
    "rese": (0.9113, "Kim et al. 2018, ReSE-2 + multi-level aggregation"),
}
PROTOCOL = {"lr": 1e-3, "epochs": 20, "batch_size": 10, "lr_factor": None, "lr_patience": None}


def segment_starts(length: int, protocol: str = "segment", segment: int = SEGMENT) -> np.ndarray:
    """Where a clip of `length` samples is cut: `segment`, ceil(length / segment) evenly spaced segments
    covering it (first at 0, last ending at the clip's end); `logit_mean`, the whole consecutive ones.

    Chapter: 07_beyond
    """
    if length < segment:
        raise ValueError(f"a clip of {length:,} samples is shorter than one segment of {segment:,}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if protocol == "logit_mean":
        return np.arange(length // segment) * segment
    n = math.ceil(length / segment)
    return np.round(np.linspace(0, length - segment, n)).astype(np.int64)


def mean_probability_logit(logits: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """The logit of the mean sigmoid probability over `dim`, computed without leaving log space:
    log(mean p) - log(mean (1 - p)), exact where a plain logit(mean(sigmoid)) would round to +-inf.

    Chapter: 07_beyond
    """
    return torch.logsumexp(F.logsigmoid(logits), dim) - torch.logsumexp(F.logsigmoid(-logits), dim)


class SqueezeExcite(nn.Module):
    """Squeeze (mean over time) and excite (FC C -> C * amplify, ReLU, FC -> C, sigmoid), then scale the
    channels; Kim et al.'s excitation expands the channels (amplifying ratio 16) where image models reduce.

    Chapter: 07_beyond
    """

    def __init__(self, channels: int, amplify: int):
        super().__init__()
        self.excite = nn.Sequential(nn.Linear(channels, channels * amplify), nn.ReLU(),
                                    nn.Linear(channels * amplify, channels), nn.Sigmoid())

    def forward(self, x):
        return x * self.excite(x.mean(dim=-1)).unsqueeze(-1)


def _conv_bn(cin: int, cout: int, width: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(cin, cout, width, padding=width // 2), nn.BatchNorm1d(cout))


class Block(nn.Module):
    """One sample-level block; each divides time by 3. `basic`: conv 3, BN, ReLU, max-pool 3 (Lee et al.).
    `se`: the basic block, then SE on the pooled output (Kim et al. excite after the pool). `rese`: conv 3,
    BN, ReLU, dropout 0.2, conv 3, BN, SE, plus a shortcut (a 1x1 conv with BN where the width changes),
    ReLU, max-pool 3.

    Chapter: 07_beyond
    """

    def __init__(self, kind: str, cin: int, cout: int, amplify: int):
        super().__init__()
        self.kind = kind
        if kind == "rese":
            self.body = nn.Sequential(_conv_bn(cin, cout, 3), nn.ReLU(), nn.Dropout(0.2), _conv_bn(cout, cout, 3),
                                      SqueezeExcite(cout, amplify))
            self.skip = _conv_bn(cin, cout, 1) if cin != cout else nn.Identity()
        else:
            self.body = nn.Sequential(_conv_bn(cin, cout, 3), nn.ReLU())
        self.pool = nn.MaxPool1d(3)
        self.excite = SqueezeExcite(cout, amplify) if kind == "se" else None

    def forward(self, x):
        if self.kind == "rese":
            return self.pool(torch.relu(self.body(x) + self.skip(x)))
        x = self.pool(self.body(x))
        return self.excite(x) if self.excite is not None else x


class SampleLevelCNN(nn.Module):
    """A stride-3 convolution of 128 filters over single samples, then nine blocks with a max-pool of 3,
    so a 59,049-sample segment ends as one time step. `basic` blocks end as Lee et al. (a 1x1 conv of 512,
    dropout 0.5, FC K); `se` and `rese` end as Kim et al. (global max of the last three blocks' outputs,
    concatenated into F = 1,024 features, FC F with BN, ReLU, dropout 0.5, FC K).

    Input: x [B, 1, L] at `sample_rate`. L = 59,049 is one segment per clip (training under the segment
    protocol); a longer L is a whole clip, cut and aggregated by `protocol` (see the module docstring).

    Chapter: 07_beyond
    """

    INPUT = "waveform"  # the data pipeline hands it [B, 1, L], not the paper's [B, 10, 1, 34950]

    def __init__(self, kind: str, n_tags: int, widths: tuple, amplify: int, sample_rate: int, protocol: str):
        super().__init__()
        if len(widths) != 9:
            raise ValueError(f"a 3^9 sample-level model has 9 blocks, got {len(widths)} widths")
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        self.kind, self.sample_rate, self.protocol = kind, sample_rate, protocol
        self.train_crop = SEGMENT if protocol == "segment" else None  # what one training step reads per clip
        self.first = nn.Sequential(nn.Conv1d(1, 128, 3, stride=3), nn.BatchNorm1d(128), nn.ReLU())
        cin, blocks = 128, []
        for cout in widths:
            blocks.append(Block(kind, cin, cout, amplify))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        if kind == "basic":
            self.head = nn.Sequential(nn.Conv1d(cin, 512, 1), nn.BatchNorm1d(512), nn.ReLU(), nn.Dropout(0.5),
                                      nn.Flatten(), nn.Linear(512, n_tags))
        else:
            features = sum(widths[-3:])
            self.head = nn.Sequential(nn.Linear(features, features), nn.BatchNorm1d(features), nn.ReLU(),
                                      nn.Dropout(0.5), nn.Linear(features, n_tags))

    @property
    def input_shape(self) -> tuple:
        """One whole clip of MTAT's 29.1 s at the model's rate, for `describe`."""
        from ..data.audio import clip_samples

        return (1, 1, clip_samples(self.sample_rate))

    def stages(self, x: torch.Tensor):
        """Yield (name, module, output) per stage (see `rawtag.models.describe`)."""
        batch, length = x.shape[0], x.shape[-1]
        if x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(f"{type(self).__name__} takes waveforms [B, 1, L], got {list(x.shape)}")
        starts = segment_starts(length, self.protocol) if length != SEGMENT else np.zeros(1, np.int64)
        n = len(starts)
        if n > 1:
            x = torch.stack([x[..., s:s + SEGMENT] for s in starts.tolist()], dim=1).reshape(batch * n, 1, SEGMENT)
            yield f"{n} segments of {SEGMENT:,}", None, x
        x = self.first(x)
        yield "conv 3 / stride 3, 128", self.first, x
        levels = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            levels.append(x)
            yield f"{self.kind} block {i + 1}", block, x
        if self.kind != "basic":
            x = torch.cat([level.amax(dim=-1) for level in levels[-3:]], dim=1)
            yield "multi-level aggregation", None, x
        x = self.head(x)
        yield "head (logits)", self.head, x
        if n > 1:
            x = x.reshape(batch, n, -1)
            if self.protocol == "segment":
                yield "mean probability over segments (as a logit)", None, mean_probability_logit(x)
            else:
                yield "mean logit over segments", None, x.mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _name, _module, out in self.stages(x):  # the forward pass is the walk through the stages
            x = out
        return x  # the last stage's output: the clip logits


@register("samplecnn")
class SampleCNN(SampleLevelCNN):
    """Lee et al. (2017), the 3^9 model: 59,049-sample segments, basic blocks.

    Chapter: 07_beyond
    """

    PROTOCOL = PROTOCOL

    def __init__(self, n_tags: int = 50, widths: tuple = SAMPLE_WIDTHS, sample_rate: int = SAMPLE_RATE,
                 protocol: str = "segment"):
        super().__init__("basic", n_tags, tuple(widths), 1, sample_rate, protocol)


@register("se")
class SECNN(SampleLevelCNN):
    """Kim et al. (2018): SE blocks (amplifying ratio 16) with multi-level aggregation.

    Chapter: 07_beyond
    """

    PROTOCOL = PROTOCOL

    def __init__(self, n_tags: int = 50, widths: tuple = SAMPLE_WIDTHS, amplify: int = 16,
                 sample_rate: int = SAMPLE_RATE, protocol: str = "segment"):
        super().__init__("se", n_tags, tuple(widths), amplify, sample_rate, protocol)


@register("rese")
class ReSECNN(SampleLevelCNN):
    """Kim et al. (2018): ReSE-2 blocks (amplifying ratio 16) with multi-level aggregation.

    Chapter: 07_beyond
    """

    PROTOCOL = PROTOCOL

    def __init__(self, n_tags: int = 50, widths: tuple = SAMPLE_WIDTHS, amplify: int = 16,
                 sample_rate: int = SAMPLE_RATE, protocol: str = "segment"):
        super().__init__("rese", n_tags, tuple(widths), amplify, sample_rate, protocol)


class LogMel(nn.Module):
    """Log-compressed mel spectrogram computed on the device: a torch STFT (Hann window, no centring),
    power, librosa's mel filterbank, log(1 + C * mel) as Dieleman & Schrauwen. [N, 1, T] -> [N, mels, F].

    Chapter: 07_beyond
    """

    def __init__(self, sample_rate: int, n_fft: int, hop: int, n_mels: int, compression: float):
        super().__init__()
        try:
            import librosa
        except ImportError as e:
            raise ImportError("melcnn builds its mel filterbank with librosa: pip install librosa "
                              "(or rawtag[book])") from e

        filters = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmax=sample_rate / 2)
        self.register_buffer("filters", torch.from_numpy(filters.astype(np.float32)), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.n_fft, self.hop, self.compression = n_fft, hop, compression

    def forward(self, x):
        spec = torch.stft(x.squeeze(1).float(), self.n_fft, self.hop, window=self.window, center=False,
                          return_complex=True).abs() ** 2
        return torch.log1p(self.compression * (self.filters @ spec))


@register("melcnn")
class MelCNN(FrameCNN):
    """The paper's base CNN with its strided convolution replaced by a log-mel spectrogram of the same frame
    length (the FFT size) and stride (the hop): Dieleman & Schrauwen's spectrogram baseline.

    Chapter: 07_beyond
    """

    PROTOCOL = PROTOCOL
    front = "log-mel, FFT / hop"

    def __init__(self, length: int = 256, stride: int = 256, n_tags: int = 50, n_mels: int = 64,
                 compression: float = 10_000.0, sample_rate: int = 12_000, time_pool: str = "max",
                 clip_pool: str = "mean", subclip_samples: int = 34950):
        super().__init__(length, stride, n_tags, n_mels, (32, 32), False, 0.0, time_pool, clip_pool,
                         subclip_samples)
        self.frames = LogMel(sample_rate, length, stride, n_mels, compression)
        self.sample_rate = sample_rate

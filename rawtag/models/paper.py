"""The paper's models: the base CNN (sections IV, V.B) and the improved CNN (section IX.E).

Taught in chapter 03 (base CNN) and chapter 06 (improvements). Both take x [B, 10, 1, 34950], run the
10 sub-clips as one batch [10B, 1, 34950], pool over time, and return logits [B, K] pooled over sub-clips.

The paper's ambiguity: it writes "global max pooling, i.e. computing the average" for both poolings.
Here both are explicit parameters:
- `time_pool` (default "max"): max over time asks "does this feature occur anywhere in the 2.9 s?",
  which suits tags (a guitar is present if it plays at all); the mean dilutes short events.
- `clip_pool` (default "mean"): the paper's described operation, and what Dieleman & Schrauwen did
  with window predictions: average the 10 sub-clips' logits into the clip's logits.
Chapter 03 trains both choices and shows the difference.

Chapter: 03_base_cnn
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from . import timemajor
from .frameconv import FrameConv
from .registry import register

POOLS = ("max", "mean")

# What the paper reports on MagnaTagATune (validation ROC-AUC, macro over the top-50 tags, 20 epochs).
# Quoted for comparison, never measured here; chapters print them beside their own runs, labelled as such.
PAPER_TABLE_1 = {(1024, 1024): 0.7428, (1024, 512): 0.7702, (512, 512): 0.7718, (512, 256): 0.7931,
                 (256, 256): 0.7827}
PAPER_IMPROVED = 0.8572  # improved CNN, length 256, stride 256 (section IX)
PAPER_CLIP_BCE = {"best": 0.0582, "worst": 0.7612}  # section VIII, validation clips


def _pool(x: torch.Tensor, how: str, dim: int) -> torch.Tensor:
    return x.amax(dim=dim) if how == "max" else x.mean(dim=dim)


class FrameCNN(nn.Module):
    """A strided "frame" convolution, then [conv length 8 + max-pool 4 stride 1] pairs, global pooling over
    time, FC 100 and FC K. The base and improved CNNs are two settings of it.

    Chapter: 03_base_cnn
    """

    front = "strided conv"  # what `self.frames` is, for `describe`
    INPUT = "subclips"  # the data pipeline hands it [B, 10, 1, 34950] (see `rawtag.data.audio.model_input`)
    sample_rate = 12_000  # the paper's audio; a prepared set at another rate is refused (`check_rate`)

    def __init__(self, length: int, stride: int, n_tags: int, first_filters: int, widths: tuple,
                 batch_norm: bool, dropout: float, time_pool: str, clip_pool: str, subclip_samples: int):
        super().__init__()
        if length < 1 or stride < 1:
            raise ValueError(f"length and stride must be positive, got length {length}, stride {stride}")
        if stride > length:
            raise ValueError(f"stride {stride} is larger than length {length}: samples between frames would "
                             f"be skipped; use a stride of at most the length")
        if length > subclip_samples:
            raise ValueError(f"length {length} is longer than a sub-clip ({subclip_samples} samples)")
        for name, how in (("time_pool", time_pool), ("clip_pool", clip_pool)):
            if how not in POOLS:
                raise ValueError(f"{name} must be one of {POOLS}, got {how!r}")
        frames = (subclip_samples - length) // stride + 1
        if frames - 10 * len(widths) < 1:
            raise ValueError(f"length {length} / stride {stride} leaves {frames} frames per sub-clip, too few "
                             f"for {len(widths)} conv + pool pairs (each removes 10); lower the stride")
        self.length, self.stride, self.time_pool, self.clip_pool = length, stride, time_pool, clip_pool
        self.input_shape = (1, 10, 1, subclip_samples)  # one clip, for `describe`

        def block(conv):
            layers = [conv] + ([timemajor.BatchNorm1d(conv.out_channels)] if batch_norm else [])
            return nn.Sequential(*layers, nn.ReLU())

        # PyTorch's layers computed faster on a CPU (same parameters, equal results; see `torch_layers`)
        self.frames = block(FrameConv(first_filters, length, stride))
        pairs, cin = [], first_filters
        for cout in widths:
            pairs.append(nn.Sequential(block(timemajor.Conv1d(cin, cout, 8)), timemajor.MaxPool1d(4, stride=1)))
            cin = cout
        self.pairs = nn.Sequential(*pairs)
        # Dropout acts on the pooled feature vector, after global pooling over time: placed before a max-pool,
        # inverted dropout's 1/(1-p) scaling survives the max and inflates training features ~2x (chapter 06).
        self.dropout = nn.Dropout(dropout) if dropout else None
        self.fc1 = nn.Sequential(nn.Linear(cin, 100), nn.ReLU())
        self.fc2 = nn.Linear(100, n_tags)

    def stages(self, x: torch.Tensor):
        """Yield (name, module, output) for each stage of the forward pass (see `describe`)."""
        batch, subclips = x.shape[:2]
        x = x.reshape(batch * subclips, 1, x.shape[-1])
        yield "flatten sub-clips", None, x
        x = self.frames(x)
        yield f"{self.front} {self.length}/{self.stride}", self.frames, x
        for i, pair in enumerate(self.pairs):
            x = pair(x)
            yield f"conv 8 + max-pool 4 #{i + 1}", pair, x
        x = _pool(x, self.time_pool, dim=-1)
        yield f"global {self.time_pool} over time", None, x
        if self.dropout is not None:
            x = self.dropout(x)
            yield f"dropout {self.dropout.p}", self.dropout, x
        x = self.fc1(x)
        yield "FC 100", self.fc1, x
        x = self.fc2(x)
        yield "FC K (logits)", self.fc2, x
        x = x.reshape(batch, subclips, -1)
        yield "reshape [B, 10, K]", None, x
        x = _pool(x, self.clip_pool, dim=1)
        yield f"{self.clip_pool} over sub-clips", None, x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _name, _module, out in self.stages(x):  # the forward pass is the walk through the stages
            x = out
        return x  # the last stage's output: the clip logits


def torch_layers(model: FrameCNN) -> FrameCNN:
    """A copy of `model` built from PyTorch's own `nn.Conv1d`, `nn.BatchNorm1d` and `nn.MaxPool1d` instead of
    `FrameConv` and the time-major layers: the formulation the fast layers must equal (tests), and the
    benchmark's "before".

    Chapter: 03_base_cnn
    """
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Conv1d) and type(child) is not nn.Conv1d:
                plain = nn.Conv1d(child.in_channels, child.out_channels, child.kernel_size, child.stride)
                plain.load_state_dict(child.state_dict())
                setattr(parent, name, plain.to(child.weight.device))
            elif isinstance(child, nn.BatchNorm1d) and type(child) is not nn.BatchNorm1d:
                plain = nn.BatchNorm1d(child.num_features, child.eps, child.momentum)
                plain.load_state_dict(child.state_dict())
                setattr(parent, name, plain.to(child.weight.device))
            elif isinstance(child, nn.MaxPool1d) and type(child) is not nn.MaxPool1d:
                setattr(parent, name, nn.MaxPool1d(child.kernel_size, child.stride))
    return model


@register("base")
class BaseCNN(FrameCNN):
    """The paper's base CNN (section IV): a ONE-filter strided conv, two pairs of conv 32 x 8 + max-pool 4
    (stride 1), global pooling over time, FC 100, FC K; ReLU everywhere but the last layer.

    Chapter: 03_base_cnn
    """

    PROTOCOL = {"lr": 1e-3, "epochs": 20, "batch_size": 10, "lr_factor": None, "lr_patience": None}

    def __init__(self, length: int = 256, stride: int = 256, n_tags: int = 50, time_pool: str = "max",
                 clip_pool: str = "mean", subclip_samples: int = 34950):
        super().__init__(length, stride, n_tags, 1, (32, 32), False, 0.0, time_pool, clip_pool, subclip_samples)


@register("improved")
class ImprovedCNN(FrameCNN):
    """The paper's improved CNN (section IX.E): a 128-filter strided conv, three pairs with 128 / 512 / 512
    filters, batch norm on all four convs, dropout 0.5 on the pooled features (before FC 100), FC 100, FC K.
    Trained with Adam at 0.01, divided by 5 when validation AUC has not improved for more than 3 epochs.

    Chapter: 06_improvements
    """

    PROTOCOL = {"lr": 1e-2, "epochs": 20, "batch_size": 10, "lr_factor": 0.2, "lr_patience": 3}

    def __init__(self, length: int = 256, stride: int = 256, n_tags: int = 50, time_pool: str = "max",
                 clip_pool: str = "mean", subclip_samples: int = 34950, widths: tuple = (128, 512, 512),
                 first_filters: int = 128, batch_norm: bool = True, dropout: float = 0.5):
        super().__init__(length, stride, n_tags, first_filters, tuple(widths), batch_norm, dropout, time_pool,
                         clip_pool, subclip_samples)


#: Chapter 06's ablation ladder, from the base CNN to the improved CNN one change at a time: each step's
#: (model, settings) adds one change to the step before it, all at the improved CNN's budget; the cheap
#: changes come first, width (the expensive one) last, so that the last step is the improved CNN itself.
#: `lr_factor=0.0, lr_patience=0` switch the plateau schedule off: those steps keep lr 0.001 throughout.
#: Chapter 06 trains it on the stand-in; chapter 08 scores every step on real music.
ABLATION_LADDER = {
    "base": ("base", {"budget_of": "improved"}),
    "+ batch norm": ("improved", {"first_filters": 1, "widths": (32, 32), "dropout": 0.0, "lr": 1e-3,
                                  "lr_factor": 0.0, "lr_patience": 0}),
    "+ dropout 0.5": ("improved", {"first_filters": 1, "widths": (32, 32), "lr": 1e-3, "lr_factor": 0.0,
                                   "lr_patience": 0}),
    "+ depth (3 pairs)": ("improved", {"first_filters": 1, "widths": (32, 32, 32), "lr": 1e-3, "lr_factor": 0.0,
                                       "lr_patience": 0}),
    "+ lr 0.01 with the plateau schedule": ("improved", {"first_filters": 1, "widths": (32, 32, 32)}),
    "+ width (= improved)": ("improved", {}),
}
SCHEDULE_STEP = "+ lr 0.01 with the plateau schedule"  # the ladder's step that turns the schedule on

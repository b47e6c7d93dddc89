"""The paper's models: shapes for Table 1's settings, parameter counts derived by hand, bad parameters."""
from __future__ import annotations

import io

import pytest
import torch

from rawtag.models import build_model, count_parameters, describe, protocol

TABLE1 = [(1024, 1024), (1024, 512), (512, 512), (512, 256), (256, 256)]


def conv(cin, cout, k, bn=False):
    return cin * cout * k + cout + (2 * cout if bn else 0)


def base_count(length, k=50):
    return conv(1, 1, length) + conv(1, 32, 8) + conv(32, 32, 8) + (32 * 100 + 100) + (100 * k + k)


def improved_count(length, k=50):
    return (conv(1, 128, length, True) + conv(128, 128, 8, True) + conv(128, 512, 8, True)
            + conv(512, 512, 8, True) + (512 * 100 + 100) + (100 * k + k))


@pytest.mark.parametrize("length,stride", TABLE1)
def test_base_shapes_and_parameters(length, stride):
    model = build_model("base", length=length, stride=stride)
    assert count_parameters(model) == base_count(length)
    rows = describe(model, (2, 10, 1, 34950), file=io.StringIO())
    frames = (34950 - length) // stride + 1
    shapes = [shape for _, shape, _ in rows]
    assert shapes[1] == (20, 1, frames)
    assert shapes[2] == (20, 32, frames - 7 - 3) and shapes[3] == (20, 32, frames - 20)
    assert shapes[4] == (20, 32) and shapes[5] == (20, 100) and shapes[6] == (20, 50)
    assert shapes[7] == (2, 10, 50) and shapes[-1] == (2, 50)
    assert model(torch.randn(2, 10, 1, 34950)).shape == (2, 50)


def test_improved_shapes_and_parameters():
    model = build_model("improved", length=256, stride=256, n_tags=47)
    assert count_parameters(model) == improved_count(256, 47)
    rows = describe(model, (1, 10, 1, 34950), file=io.StringIO())
    assert [s for _, s, _ in rows][1:5] == [(10, 128, 136), (10, 128, 126), (10, 512, 116), (10, 512, 106)]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules()) == 4
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)] == [0.5]
    model.eval()
    assert model(torch.randn(3, 10, 1, 34950)).shape == (3, 47)


def test_pooling_choices_differ():
    x = torch.randn(2, 10, 1, 34950)
    torch.manual_seed(0)
    a = build_model("base", time_pool="max", clip_pool="mean")
    b = build_model("base", time_pool="mean", clip_pool="max")
    b.load_state_dict(a.state_dict())
    assert not torch.allclose(a(x), b(x))
    with pytest.raises(ValueError, match="time_pool must be one of"):
        build_model("base", time_pool="median")


def test_protocols():
    assert protocol("base") == {"lr": 1e-3, "epochs": 20, "batch_size": 10, "lr_factor": None, "lr_patience": None}
    assert protocol("improved")["lr"] == 1e-2 and protocol("improved")["lr_factor"] == 0.2


@pytest.mark.parametrize("params,message", [
    ({"length": 256, "stride": 512}, "stride 512 is larger than length 256"),
    ({"length": 40000, "stride": 40000}, "longer than a sub-clip"),
    ({"length": 16384, "stride": 16384}, "too few"),
    ({"width": 3}, "takes no parameter"),
])
def test_bad_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        build_model("base", **params)


def test_unknown_model():
    with pytest.raises(ValueError, match="unknown model 'resnet'; choose one of base, improved"):
        build_model("resnet")


def _fc1_inputs(model, x, dropout_training: bool):
    """What reaches FC 100: eval mode everywhere (batch norm with running statistics), dropout on or off."""
    seen = []
    hook = model.fc1.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach()))
    model.eval()
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.train(dropout_training)
    with torch.no_grad():
        model(x)
    hook.remove()
    return seen[0]


def test_dropout_keeps_expected_features_unchanged():
    """Inverted dropout on the pooled vector keeps E[train-mode features] = eval-mode features; placed before
    a max-pool (the old placement) the max of scaled values would make the training mean ~2x larger."""
    torch.manual_seed(0)
    model = build_model("improved", n_tags=5, widths=(8, 16, 16), first_filters=8)
    x = torch.randn(1, 10, 1, 34950)
    reference = _fc1_inputs(model, x, dropout_training=False)
    draws = torch.stack([_fc1_inputs(model, x, dropout_training=True) for _ in range(400)])
    ratio = float(draws.mean(0).sum() / reference.sum())
    assert abs(ratio - 1) < 0.05, ratio
    stage_names = [name for name, _, _ in model.stages(x)]
    assert stage_names.index("dropout 0.5") == stage_names.index("global max over time") + 1

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


# The fast layers (FrameConv, time-major Conv1d and MaxPool1d) against PyTorch's nn.Conv1d / nn.MaxPool1d.

def _dyadic(model: torch.nn.Module) -> None:
    """Conv weights in steps of 1/16, conv biases zero: with inputs in steps of 1/4, every conv and pool output
    is exact in float32 in any order of summation, and equal values (ties in the max) are common."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv1d):
                m.weight.copy_(torch.randint(-2, 3, m.weight.shape, generator=g) / 16)
                m.bias.zero_()


def _outputs_and_gradients(model, x, y, seed=0):
    torch.manual_seed(seed)  # the same dropout masks
    x = x.clone().requires_grad_()
    out = model(x)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(out, y)
    return [out.detach(), *torch.autograd.grad(loss, [x, *model.parameters()])]


def _assert_equal_within(new, ref, tolerance=1e-5):
    for a, b in zip(new, ref, strict=True):
        scale = max(1.0, float(b.abs().max()))
        assert float((a - b).abs().max()) <= tolerance * scale, (float((a - b).abs().max()), scale)


def _tied_windows(model, x) -> int:
    """Windows of 4 in the max-pools' inputs whose positive maximum occurs more than once."""
    ties = []
    hooks = [pair[1].register_forward_pre_hook(lambda m, inputs: ties.append(
        int(((w := inputs[0].unfold(-1, 4, 1)) == w.amax(-1, keepdim=True)).sum(-1).gt(1)
            .logical_and(w.amax(-1) > 0).sum()))) for pair in model.pairs]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return sum(ties)


@pytest.mark.parametrize("length,stride", TABLE1 + [(300, 200)])  # 300/200: not a multiple, nn.Conv1d's frames
@pytest.mark.parametrize("time_pool", ["max", "mean"])  # max: sparse conv backward; mean: dense
def test_fast_layers_equal_torch_layers_with_ties(length, stride, time_pool):
    from rawtag.models.paper import torch_layers

    model = build_model("base", length=length, stride=stride, time_pool=time_pool, n_tags=7)
    _dyadic(model)
    reference = torch_layers(model)
    assert [type(m) for m in reference.modules() if "Conv" in type(m).__name__] == [torch.nn.Conv1d] * 3
    g = torch.Generator().manual_seed(2)
    x = torch.randint(-3, 4, (2, 10, 1, 34950), generator=g) / 4
    y = (torch.rand(2, 7, generator=g) > 0.5).float()
    assert _tied_windows(model, x) > 100, "the test must meet ties in the max"
    new, ref = _outputs_and_gradients(model, x, y), _outputs_and_gradients(reference, x, y)
    assert torch.equal(new[0], ref[0]), "exact forward: every conv and pool output is exact"
    _assert_equal_within(new, ref)


def test_fast_layers_equal_torch_layers_improved():
    """Batch norm between conv and ReLU (channel-major again), dropout, 3 pairs; train and eval mode."""
    from rawtag.models.paper import torch_layers

    torch.manual_seed(0)
    model = build_model("improved", n_tags=5, widths=(8, 16, 16), first_filters=8)
    reference = torch_layers(model)
    x, y = torch.randn(2, 10, 1, 34950), (torch.rand(2, 5) > 0.5).float()
    _assert_equal_within(_outputs_and_gradients(model, x, y), _outputs_and_gradients(reference, x, y))
    model.eval()
    reference.eval()
    with torch.no_grad():
        _assert_equal_within([model(x)], [reference(x)])


@pytest.mark.parametrize("hit_steps", [3, 60])  # few output steps with a gradient (sparse path), many (dense)
def test_time_major_conv_backward(hit_steps):
    from rawtag.models import timemajor

    torch.manual_seed(0)
    conv = timemajor.Conv1d(5, 6, 8)
    x = torch.randn(3, 5, 70, requires_grad=True)
    grad = torch.zeros(3, 6, 63)
    grad[:, :, torch.randperm(63)[:hit_steps]] = torch.randn(3, 6, hit_steps)
    grad[0, 1, 5] = 0.0  # a zero inside a hit step
    new = torch.autograd.grad(conv(x), [x, conv.weight, conv.bias], grad)
    ref = torch.autograd.grad(torch.nn.functional.conv1d(x, conv.weight, conv.bias), [x, conv.weight, conv.bias],
                              grad)
    _assert_equal_within(new, ref)
    assert conv(x).stride()[1] == 1, "output stored time-major"


def test_every_ablation_step_builds_and_the_ladder_ends_at_the_improved_cnn():
    from rawtag.models.paper import ABLATION_LADDER, SCHEDULE_STEP
    from rawtag.workspace import _train_fields

    train_keys = _train_fields() | {"budget_of"}
    built = []
    for name, (model, settings) in ABLATION_LADDER.items():
        params = {k: v for k, v in settings.items() if k not in train_keys}
        built.append((name, build_model(model, n_tags=5, **params)))
    assert SCHEDULE_STEP in ABLATION_LADDER
    assert list(ABLATION_LADDER.values())[-1] == ("improved", {})  # the last step is the improved CNN itself
    sizes = [count_parameters(m) for _, m in built]
    assert sizes[-1] == count_parameters(build_model("improved", n_tags=5))
    assert sizes[-1] > max(sizes[:-1])  # width, the expensive change, comes last

"""The model registry: `build_model(name, **params)` and `describe(model)`.

Taught in chapter 03 (base CNN). A model module registers its classes with `@register("name")`; a class
carries its paper's training protocol in `PROTOCOL`, which `rawtag.train.fit` uses as its defaults.

This module imports no model module, so a model module can import `register` from here without an
import cycle; `rawtag.models` imports the model modules (which registers them) and re-exports these names.

Chapter: 03_base_cnn
"""
from __future__ import annotations

import inspect

import torch
from torch import nn

MODELS: dict[str, type[nn.Module]] = {}


def register(name: str):
    """A class decorator: `@register("base")` adds the class to `MODELS` under `name`.

    Chapter: 03_base_cnn
    """
    def add(cls):
        MODELS[name] = cls
        return cls
    return add


def build_model(name: str, **params) -> nn.Module:
    """Build a registered model; unknown names and parameters get a one-line error listing the valid ones.

    Chapter: 03_base_cnn
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    cls = MODELS[name]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = set(params) - accepted
    if unknown:
        raise ValueError(f"model {name!r} takes no parameter(s) {', '.join(sorted(unknown))}; "
                         f"it takes {', '.join(sorted(accepted))}")
    return cls(**params)


def protocol(name: str) -> dict:
    """The training protocol of the paper for this model (optimizer settings, epochs, batch size).

    Chapter: 03_base_cnn
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    return dict(MODELS[name].PROTOCOL)


def defaults(name: str) -> dict:
    """The model's parameters and their default values (those without a default are left out).

    Chapter: 03_base_cnn
    """
    protocol(name)  # the unknown-name error
    return {k: p.default for k, p in inspect.signature(MODELS[name].__init__).parameters.items()
            if p.default is not inspect.Parameter.empty}


def count_parameters(module: nn.Module) -> int:
    """The number of parameters (weights and biases) of `module`.

    Chapter: 03_base_cnn
    """
    return sum(p.numel() for p in module.parameters())


def describe(model: nn.Module, input_shape: tuple | None = None, file=None) -> list[tuple[str, tuple, int]]:
    """Print and return every stage's name, output shape and parameter count for an input of `input_shape`
    (default: the model's `input_shape`, one whole clip as the data pipeline hands it to the model).

    Stages are the model's direct children run in order by its `stages(x)` generator.

    Chapter: 03_base_cnn
    """
    rows = []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for name, module, out in model.stages(torch.zeros(input_shape or model.input_shape)):
            rows.append((name, tuple(out.shape), count_parameters(module) if module is not None else 0))
    model.train(was_training)
    width = max(len(r[0]) for r in rows)
    print(f"{'stage':<{width}}  {'output shape':<24} parameters", file=file)
    for name, shape, n in rows:
        print(f"{name:<{width}}  {str(list(shape)):<24} {n:>10,}", file=file)
    print(f"{'total':<{width}}  {'':<24} {count_parameters(model):>10,}", file=file)
    return rows

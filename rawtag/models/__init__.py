"""The models: the registry (`rawtag.models.registry`) and the model modules that fill it.

Taught in chapter 03 (base CNN). `build_model(name, **params)`, `describe(model)` and the rest are
defined in `registry` and re-exported here; importing this package imports `paper` and `beyond`, whose
`@register("name")` decorators add their classes to `MODELS`.

Chapter: 03_base_cnn
"""
from __future__ import annotations

# Bound before the model modules are imported: a model module may still do `from . import register`.
from .registry import MODELS, build_model, count_parameters, defaults, describe, protocol, register

# isort: split
from . import beyond, paper  # noqa: F401  (imported for their @register side effect: they fill MODELS)

__all__ = ["MODELS", "build_model", "count_parameters", "defaults", "describe", "protocol", "register"]

"""Architecture -> ``torch.nn.Module``. Needs no Optuna: a saved architecture rebuilds the same model."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .ops import DEFAULT_REGISTRY, Registry
from .space.architecture import Architecture


def build(architecture: Architecture, registry: Registry | None = None) -> nn.Sequential:
    """One module per layer, adapters included, named ``<index>_<op>`` so a printout reads like the
    architecture JSON."""
    registry = registry or DEFAULT_REGISTRY
    modules = OrderedDict()
    for i, layer in enumerate(architecture.layers):
        builder = registry[layer.op]
        module = (builder.get_last_layer(layer.input, layer.params, architecture.output) if layer.last
                  else builder.build_layer(layer.input, layer.params))
        modules[f"{i}_{layer.op}"] = module
    return nn.Sequential(modules)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

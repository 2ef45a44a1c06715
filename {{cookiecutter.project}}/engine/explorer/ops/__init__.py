"""Ops: the registry, ``LayerBuilder``, ``@register_layer`` and the built-in ops."""

from . import builtin  # noqa: F401  (registers the built-in ops)
from .registry import (
    DEFAULT_REGISTRY,
    KINDS,
    REQUIRED,
    Infeasible,
    LayerBuilder,
    Param,
    Registry,
    Tensor,
    register_layer,
)

__all__ = ["DEFAULT_REGISTRY", "KINDS", "REQUIRED", "Infeasible", "LayerBuilder", "Param", "Registry", "Tensor",
           "register_layer"]

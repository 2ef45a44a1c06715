"""Small torch modules the built-in ops and adapters need beyond ``torch.nn``.

Imported only when a model is built, never by validation or sampling.
"""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "hardswish": nn.Hardswish,
    "identity": nn.Identity,
}


def with_activation(layer: nn.Module, activation: str | None) -> nn.Module:
    """``layer`` followed by ``activation`` (the layer alone for none/identity)."""
    if activation in (None, "identity"):
        return layer
    return nn.Sequential(layer, ACTIVATIONS[activation]())


class Reshape(nn.Module):
    """Reshape each sample to ``shape`` (the batch dimension is kept)."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class Transpose(nn.Module):
    """Swap the two per-sample dimensions: [C, L] <-> [L, C]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)


class LastStep(nn.Module):
    """The last step of a sequence [L, F] -> [F] (what a recurrent classifier reads)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1, :]


class StepsBatchNorm(nn.Module):
    """Batch norm over the features of a [L, F] sequence."""

    def __init__(self, features: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class Recurrent(nn.Module):
    """An LSTM or GRU over [L, F] that returns the whole output sequence (no hidden state)."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool,
                 dropout: float):
        super().__init__()
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                       dropout=dropout if num_layers > 1 else 0.0, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


class GlobalAvgPool(nn.Module):
    """Mean over every dimension after ``dim`` (1 for [C, ...] layouts, 1 for steps over L)."""

    def __init__(self, dims: tuple[int, ...]):
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"

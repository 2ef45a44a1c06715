"""The trainer behind the accuracy/loss estimators: seeded, CPU, early stopping that really
restores the best epoch's weights. The dataset's task picks the loss and the metrics."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .spec import TrainSettings


class TrainingDiverged(Exception):
    """The loss became NaN or infinite: the trial fails with this reason, the study goes on."""


@dataclass
class TrainResult:
    val: dict[str, float]
    best_epoch: int
    epochs_run: int
    history: list[float] = field(default_factory=list)  # validation loss per epoch


def _tensors(split: Any, task: str) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.tensor(np.asarray(split.x), dtype=torch.float32)  # a copy: prepared arrays are read-only
    y = torch.tensor(np.asarray(split.y), dtype=torch.long if task == "classification" else torch.float32)
    return x, y


def loss_function(task: str) -> nn.Module:
    return nn.CrossEntropyLoss() if task == "classification" else nn.MSELoss()


def _predict(model: nn.Module, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
    model.eval()
    with torch.inference_mode():
        return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])


def metrics(model: nn.Module, split: Any, task: str) -> dict[str, float]:
    """Loss and task metrics of ``model`` on a split: accuracy and macro F1, or MSE and MAE."""
    x, y = _tensors(split, task)
    out = _predict(model, x)
    if task == "classification":
        loss = float(nn.functional.cross_entropy(out, y))
        pred = out.argmax(dim=1)
        f1s = []
        for c in torch.unique(torch.cat([y, pred])):
            tp = int(((pred == c) & (y == c)).sum())
            denominator = int((pred == c).sum()) + int((y == c).sum())
            f1s.append(2 * tp / denominator if denominator else 0.0)
        return {"loss": loss, "accuracy": float((pred == y).float().mean()), "f1": float(np.mean(f1s))}
    target = y.reshape(out.shape)
    return {"loss": float(nn.functional.mse_loss(out, target)), "mse": float(nn.functional.mse_loss(out, target)),
            "mae": float((out - target).abs().mean())}


def _optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[settings.optimizer]
    kwargs = {"momentum": 0.9} if settings.optimizer == "sgd" else {}
    return cls(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay, **kwargs)


def train(model: nn.Module, dataset: Any, settings: TrainSettings, seed: int = 0) -> TrainResult:
    """Train on ``dataset.train``, select on ``dataset.val``; the model ends with the best epoch's weights."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x, y = _tensors(dataset.train, dataset.task)
    loss_fn = loss_function(dataset.task)
    optimizer = _optimizer(model, settings)
    best_loss, best_state, best_epoch, history = math.inf, None, 0, []
    batch = min(settings.batch_size, max(len(x), 1))
    for epoch in range(1, settings.epochs + 1):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            if len(idx) < 2 and len(x) > 1:  # batch norm cannot train on one sample
                continue
            optimizer.zero_grad(set_to_none=True)
            out = model(x[idx])
            target = y[idx] if dataset.task == "classification" else y[idx].reshape(out.shape)
            loss = loss_fn(out, target)
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"loss became {float(loss)} in epoch {epoch}")
            loss.backward()
            optimizer.step()
        val_loss = metrics(model, dataset.val, dataset.task)["loss"]
        if not math.isfinite(val_loss):
            raise TrainingDiverged(f"validation loss became {val_loss} in epoch {epoch}")
        history.append(val_loss)
        if val_loss < best_loss:
            best_loss, best_epoch = val_loss, epoch
            best_state = copy.deepcopy(model.state_dict())
        elif settings.patience is not None and epoch - best_epoch >= settings.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return TrainResult(metrics(model, dataset.val, dataset.task), best_epoch, len(history), history)

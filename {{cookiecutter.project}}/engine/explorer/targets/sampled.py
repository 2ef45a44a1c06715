"""Model folders from a search space without a search: seeded random candidates with random
weights and random inputs. The tests and ``benchmarks/targets.py`` use them to exercise every
target on models the DSL really produces (1-D, 2-D, recurrent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def sampled_model_dirs(space_path: Path, count: int, out: Path, seed: int = 0, samples: int = 16,
                       reflection=None, task: str = "classification") -> list[Path]:
    """Up to ``count`` feasible candidates of ``space_path`` (those ``reflection`` accepts, when
    given), each saved as ``out/<n>/`` like an exported search result. Deterministic per seed."""
    import optuna
    import torch

    from ..build import build
    from ..space import load_space, sample
    from .model import write_model_dir

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(Path(space_path))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    rng = np.random.default_rng(seed)
    folders: list[Path] = []
    for attempt in range(count * 20):
        if len(folders) == count:
            break
        trial = study.ask()
        candidate = sample(space, trial)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        arch = candidate.architecture
        if arch is None or (reflection is not None and reflection.problems(arch)):
            continue
        torch.manual_seed(seed * 100_003 + attempt)
        model = build(arch).eval()
        _randomise_norms(model, rng)
        x = rng.standard_normal((samples, *arch.input.shape)).astype(np.float32)
        classes = arch.output.shape[-1]
        y = rng.integers(0, classes, samples)
        folders.append(write_model_dir(Path(out) / str(len(folders)), arch, model, x, y, task=task))
    return folders


def _randomise_norms(model, rng: np.random.Generator) -> None:
    """Non-trivial batch-norm statistics, so a generator that ignores them is caught."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            n = module.num_features
            module.running_mean.copy_(torch.as_tensor(rng.normal(0, 0.5, n), dtype=torch.float32))
            module.running_var.copy_(torch.as_tensor(rng.uniform(0.5, 2.0, n), dtype=torch.float32))

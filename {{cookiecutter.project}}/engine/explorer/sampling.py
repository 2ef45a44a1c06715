"""``explorer sample``: draw candidates through Optuna exactly as the search does, and build each."""

from __future__ import annotations

import optuna

from .build import build, count_parameters
from .preprocess import Shape
from .space import SearchSpace, sample


def draw(space: SearchSpace, trials: int, seed: int, data: Shape | None = None, reflection=None) -> list[dict]:
    """``trials`` candidates from a seeded random sampler; each built, never raising for a bad candidate.
    With a target's ``reflection``, a candidate it cannot run is infeasible with the reason."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    results = []
    for _ in range(trials):
        trial = study.ask()
        cand = sample(space, trial, data=data)
        record = {"trial": trial.number, "status": cand.status, "reason": cand.reason, "params": trial.params,
                  "input_shape": None, "output_shape": None, "n_params": None, "architecture": None}
        problems = reflection.problems(cand.architecture) if reflection and cand.architecture else []
        if problems:
            record.update(status="infeasible", reason=f"target cannot run it: {problems[0]}")
        elif cand.architecture is not None:
            arch = cand.architecture
            try:
                model = build(arch)
            except Exception as exc:  # a candidate torch refuses is infeasible, not a crash
                record.update(status="infeasible", reason=f"build failed: {type(exc).__name__}: {exc}")
            else:
                record.update(input_shape=list(arch.input.shape), output_shape=list(arch.output.shape),
                              n_params=count_parameters(model), architecture=arch.to_json())
        study.tell(trial, state=optuna.trial.TrialState.PRUNED if record["status"] != "ok" else None,
                   values=None if record["status"] != "ok" else record["n_params"])
        results.append(record)
    return results

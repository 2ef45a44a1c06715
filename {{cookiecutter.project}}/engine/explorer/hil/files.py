"""The hardware loop split across CI jobs, through files: a hosted runner searches, a
self-hosted runner with the board measures, the hosted runner feeds the values back.

    explorer hil ask --n K -o DIR      K trials through every stage but the board; each gets
                                       DIR/<trial>/artifact (exported for the spec's target)
    explorer hil measure --board B DIR build + bench every artifact not measured yet
    explorer hil tell DIR              the measurements into the study (faults fail their trial)

Asked trials stay RUNNING in the study until told. A candidate already in the measurement cache
gets its measurement at ask time and is never sent to a board again. The folder is plain files:
a workflow uploads it as an artifact between the jobs.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import optuna

from ..errors import UserError
from ..search.objective import REASON, Clock, Objective, Rejected, constraints_func
from ..search.runner import Run, load_inputs, open_study
from ..search.samplers import make_sampler
from ..search.criteria import Criteria
from .cache import measurement_key
from .loop import HardwareLoop, bench_on, board_kind

ASKED = "asked.json"
TRIAL = "trial.json"
MEASUREMENT = "measurement.json"


def _hardware(run: Run) -> HardwareLoop:
    if run.spec.hardware is None:
        raise UserError(f"{run.spec_path}: no hardware: section", hint="add hardware: {target: pico} to the spec")
    return HardwareLoop(run.spec.hardware, run.root)


def ask(run: Run, count: int, out: Path) -> dict[str, Any]:
    """Ask ``count`` trials, run them up to the board, write their artifacts under ``out``."""
    from .. import targets

    hardware = _hardware(run)
    space, dataset = load_inputs(run)
    study = open_study(run, space)
    criteria = Criteria(run.spec)
    study.sampler = make_sampler(run.spec.search.sampler, run.spec.search.seed + len(study.trials),
                                 constraints_func(criteria), run.trials)
    objective = Objective(space, run.spec, dataset, run.checkpoints(space), root=run.root)
    out.mkdir(parents=True, exist_ok=True)
    asked = []
    for _ in range(count):
        with warnings.catch_warnings():  # Optuna's heartbeat serves optimize(); asked trials wait for tell
            warnings.simplefilter("ignore", UserWarning)
            trial = study.ask()
        try:
            trained = objective.prepare(trial, Clock(trial))
        except Rejected:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        except Exception as exc:  # the candidate's fault, as in the in-process loop
            if REASON not in trial.user_attrs:
                trial.set_user_attr(REASON, f"{type(exc).__name__}: {exc}")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        objective.save(trial.number, trained.model, trained.states)
        folder = out / str(trial.number)
        if folder.exists():
            shutil.rmtree(folder)
        record = {"trial": trial.number, "study": study.study_name, "values": trained.values,
                  "key_parts": hardware.key_parts(trained), "target": hardware.target.name}
        cached = hardware.cached(trained)
        if cached is not None:
            folder.mkdir(parents=True)
            (folder / MEASUREMENT).write_text(json.dumps({"values": cached, "board": "cache"}, indent=2) + "\n")
        else:
            model_dir = hardware.model_dir(trained, folder / "model")
            targets.export(hardware.target.name, model_dir, folder / "artifact", run.spec.hardware.options)
        (folder / TRIAL).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        asked.append(trial.number)
    summary = {"study": study.study_name, "space": str(run.space_path), "target": hardware.target.name,
               "trials": asked}
    (out / ASKED).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def measure(out: Path, board: Any, options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Build and bench every asked artifact without a measurement; a board fault is recorded for
    its trial (the others go on). Returns one record per artifact measured now."""
    from .. import targets
    from ..targets import BoardError
    from ..targets.toolchain import ToolchainError

    summary = _asked(out)
    records = []
    where = {"board": getattr(board, "name", "local"), "board_kind": board_kind(board)}
    for number in summary["trials"]:
        folder = out / str(number)
        if (folder / MEASUREMENT).is_file() or not (folder / "artifact").is_dir():
            continue
        try:
            targets.build(folder / "artifact", "auto")
            record = {"metrics": bench_on(folder / "artifact", board, dict(options or {})), **where}
        except (BoardError, ToolchainError, UserError) as exc:  # this trial's fault; the others go on
            record = {"fault": str(exc), **where}
        (folder / MEASUREMENT).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        records.append({"trial": number, **record})
    return records


def tell(run: Run, out: Path) -> dict[str, int]:
    """Every measured trial into the study: values, constraints, objectives; faults fail their trial."""
    hardware = _hardware(run)
    summary = _asked(out)
    space, dataset = load_inputs(run)
    study = open_study(run, space)
    if study.study_name != summary["study"]:
        raise UserError(f"{out / ASKED}: asked for study {summary['study']}, the spec now gives {study.study_name}",
                        hint="tell with the spec and space the trials were asked with")
    objective = Objective(space, run.spec, dataset, run.checkpoints(space), root=run.root)
    running = {t.number: t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))}
    counts = {"complete": 0, "failed": 0, "waiting": 0}
    for number in summary["trials"]:
        folder = out / str(number)
        if number not in running:
            continue  # told before
        if not (folder / MEASUREMENT).is_file():
            counts["waiting"] += 1
            continue
        record = read_json(folder / TRIAL, ("values", "key_parts"))
        measured = read_json(folder / MEASUREMENT, ("board",))
        trial = optuna.trial.Trial(study, running[number]._trial_id)
        values = dict(record["values"])
        try:
            if "fault" in measured:
                trial.set_user_attr(REASON, f"board {measured['board']}: {measured['fault']}")
                raise RuntimeError(measured["fault"])
            if "values" in measured:  # from the cache at ask time
                values.update(measured["values"])
            else:
                key = measurement_key(**record["key_parts"], board_kind=measured.get("board_kind", "local"))
                values.update(hardware.remember(key, measured["metrics"], measured["board"]))
            result = objective.finish(trial, values)
        except Exception as exc:
            if REASON not in trial.user_attrs:
                trial.set_user_attr(REASON, f"{type(exc).__name__}: {exc}")
            study.tell(number, state=optuna.trial.TrialState.FAIL)
            counts["failed"] += 1
            continue
        study.tell(number, result)
        counts["complete"] += 1
    return counts


def read_json(path: Path, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """A hand-over file, or one located line: a truncated download or a hand edit is the user's to fix."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON ({exc.msg})",
                        hint="download the folder again or ask again") from None
    missing = [k for k in keys if not isinstance(data, dict) or k not in data]
    if missing:
        raise UserError(f"{path}: missing key '{missing[0]}'", hint="the file was not written by explorer hil")
    return data


def _asked(out: Path) -> dict[str, Any]:
    path = Path(out) / ASKED
    if not path.is_file():
        raise UserError(f"{out}: no {ASKED}", hint="explorer hil ask --n K -o DIR writes it")
    return read_json(path, ("study", "target", "trials"))

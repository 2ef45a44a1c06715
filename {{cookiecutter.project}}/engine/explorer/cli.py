"""The ``explorer`` command: a thin typer layer over the library.

User mistakes end in one line per problem on stderr and exit code 2; heavy libraries
(torch, Optuna) are imported only by the commands that need them, so ``explorer validate``
stays fast enough for a pre-commit hook.
"""

from __future__ import annotations

import json
import sys
import warnings
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError  # typer 0.29 vendors click
from rich.console import Console
from rich.table import Table

from . import __version__
from .errors import UserError, require_extra
from .targets.protocol import BoardError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  pretty_exceptions_enable=False,
                  help="Hardware-aware neural architecture search from YAML search spaces.")
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)


SpecOption = Annotated[Optional[Path], typer.Option(
    "--spec", help="Experiment spec (default: params.yaml found from the current directory upward).")]


def _plugins(spec: Path | None) -> None:
    """Register the user's ops named in the experiment spec before a space is read."""
    from .plugins import find_spec, load_plugins

    load_plugins(spec or find_spec())


TargetOption = Annotated[Optional[str], typer.Option(
    "--target", help="host, rpi, pico or fpga (explorer targets lists them).")]


class Format(str, Enum):
    text = "text"
    github = "github"
    json = "json"


def _version(value: bool) -> None:
    if value:
        out.print(f"explorer {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                          help="Print the version and exit.")] = None) -> None:
    """Hardware-aware neural architecture search from YAML search spaces."""


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Search space YAML files.")],
    format: Annotated[Format, typer.Option("--format", help="text, github (annotations) or json.")] = Format.text,
    target: TargetOption = None,
    spec: SpecOption = None,
) -> None:
    """Check search spaces: every mistake as FILE:LINE:COL with a hint; exit 2 on errors."""
    from .space import check_file, space_size

    _plugins(spec)
    if target is not None:
        from .targets import get_target

        get_target(target)  # an unknown target is one line before any file is read
    failed = False
    records = []
    for file in files:
        space, diagnostics = check_file(file)
        if space is not None and target is not None:
            from .targets.commands import target_diagnostics

            diagnostics = diagnostics + target_diagnostics(file, space, target)
            if any(d.severity == "error" for d in diagnostics):
                space = None
        failed |= space is None
        summary = None
        if space is not None:
            blocks = len(space.all_blocks())
            ops = ", ".join(sorted(space.primitive_ops()))
            steps = ", ".join(name for name, _ in space.preprocessing.steps) if space.preprocessing else ""
            summary = (f"{file}: ok, {blocks} blocks, ops {ops}" + (f", preprocessing {steps}" if steps else "")
                       + f", {space_size(space)}")
        records.append({"file": str(file), "ok": space is not None, "summary": summary,
                        "diagnostics": [d.to_dict() for d in diagnostics]})
        if format is Format.json:
            continue
        for d in diagnostics:
            if format is Format.github:
                out.print(d.github(), markup=False)
            else:
                err.print(str(d), markup=False)
        if summary:
            out.print(summary, markup=False)
    if format is Format.json:
        out.print(json.dumps(records, indent=2), markup=False)
    if failed:
        raise typer.Exit(2)


@app.command()
def sample(
    file: Annotated[Path, typer.Argument(help="Search space YAML file.")],
    trials: Annotated[int, typer.Option("--trials", "-n", min=1, help="How many candidates to draw.")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random sampler.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Dataset for pre-processing spaces "
                                                   "(default: the spec's).")] = None,
    target: TargetOption = None,
    spec: SpecOption = None,
) -> None:
    """Draw candidates through the search's own path (Optuna trial, random sampler) and build each."""
    from .sampling import draw
    from .space import load_space

    _plugins(spec)
    space = load_space(file)
    reflection = None
    if target is not None:
        from .targets import get_target
        from .targets.restrict import restrict

        reflection = get_target(target).reflection
        space, findings = restrict(space, reflection)
        if any(f.fatal for f in findings):
            raise UserError(f"{file}: target {target} cannot run this space: "
                            + next(f.message for f in findings if f.fatal),
                            hint=f"explorer validate --target {target} {file}")
    for w in space.warnings:
        err.print(str(w), markup=False)
    shape = None
    if space.preprocessing is not None:
        from .data import load_dataset
        from .search.objective import data_shape
        from .spec import load_spec

        config = dataset or load_spec(spec)[0].dataset
        data = load_dataset(config)
        try:
            shape = data_shape(data)
        except ValueError as exc:
            raise UserError(str(exc), hint="pre-processing works on [C, L] series and streams") from None
    results = draw(space, trials, seed, shape, reflection)
    if as_json:
        for r in results:
            out.print(json.dumps(r), markup=False)
        return
    table = Table(title=f"{file}: {trials} candidates, seed {seed}")
    for col in ("trial", "status", "input", "output", "params", "layers / reason"):
        table.add_column(col)
    for r in results:
        ok = r["status"] == "ok"
        layers = " > ".join(l["op"] for l in r["architecture"]["layers"] if not l["adapter"]) if ok else r["reason"]
        table.add_row(str(r["trial"]), r["status"], str(r["input_shape"] or "-"), str(r["output_shape"] or "-"),
                      f"{r['n_params']:,}" if ok else "-", layers)
    out.print(table)
    ok = sum(r["status"] == "ok" for r in results)
    reasons: dict[str, int] = {}
    for r in results:
        if r["status"] != "ok":
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    out.print(f"{ok} ok, {len(results) - ok} infeasible", markup=False)
    for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
        out.print(f"  {n} x {reason}", markup=False)


@app.command()
def ops(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
        spec: SpecOption = None) -> None:
    """List the registered ops with their parameters, defaults and bounds."""
    from .ops import DEFAULT_REGISTRY, REQUIRED

    _plugins(spec)
    rows = []
    for name, op in DEFAULT_REGISTRY.searchable().items():
        params = [{"name": p.name, "type": p.describe(), "default": None if p.default is REQUIRED else p.default,
                   "required": p.required, "size": p.size, "doc": p.doc} for p in op.params]
        rows.append({"op": name, "accepts": list(op.accepts), "doc": op.doc, "params": params})
    if as_json:
        out.print(json.dumps(rows, indent=2), markup=False)
        return
    table = Table(title="ops")
    for col in ("op", "input", "parameters", "description"):
        table.add_column(col)
    for row in rows:
        params = "\n".join(
            f"{p['name']}: {p['type']}"
            + (" (set from output when last)" if p["size"] else "")
            + ("" if p["required"] else f" = {p['default']!r}")
            for p in row["params"]) or "-"
        table.add_row(row["op"], ", ".join(row["accepts"]), params, row["doc"])
    out.print(table)


@app.command()
def schema(for_spec: Annotated[bool, typer.Option("--spec", help="The experiment spec's (params.yaml) schema.")]
           = False,
           inventory: Annotated[bool, typer.Option("--inventory", help="The board inventory's schema.")] = False
           ) -> None:
    """Print the JSON Schema of search space files (or of params.yaml / boards.yaml) for editors and check-jsonschema."""
    if inventory:
        from .boards import Inventory

        out.print(json.dumps(Inventory.model_json_schema(), indent=2), markup=False)
        return
    if for_spec:
        from .spec import spec_schema

        out.print(json.dumps(spec_schema(), indent=2), markup=False)
        return
    from .ops import DEFAULT_REGISTRY
    from .space.schema import json_schema

    _plugins(None)
    out.print(json.dumps(json_schema(DEFAULT_REGISTRY), indent=2), markup=False)


@app.command()
def datasets(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
             spec: SpecOption = None) -> None:
    """List the registered datasets (task, input shape, classes, sample rate)."""
    from .data import datasets_table

    _plugins(spec)
    rows = datasets_table()
    if as_json:
        out.print(json.dumps(rows, indent=2), markup=False)
        return
    table = Table(title="datasets")
    for col in rows[0] if rows else []:
        table.add_column(col)
    for row in rows:
        table.add_row(*[str(v) if v is not None else "-" for v in row.values()])
    out.print(table)


@app.command()
def prepare(
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Dataset name (default: the spec's).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Folder (default: data/prepared).")] = None,
    spec: SpecOption = None,
) -> None:
    """Materialise the experiment's dataset into data/prepared/ with a manifest (the DVC prepare stage)."""
    from .data import run_prepare
    from .spec import load_spec

    _plugins(spec)
    loaded, path = load_spec(spec)
    config = dataset or loaded.dataset
    manifest = run_prepare(config, path.parent, output or path.parent / "data" / "prepared")
    out.print(json.dumps(manifest, indent=2, sort_keys=True), markup=False)


@app.command()
def search(
    spec: SpecOption = None,
    space: Annotated[Optional[list[Path]], typer.Option("--space", help="Search only this space (repeatable).")]
    = None,
    trials: Annotated[Optional[int], typer.Option("--trials", min=1, help="Finished trials of the study in total.")]
    = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", min=0.0, help="Seconds for this run.")] = None,
    storage: Annotated[Optional[str], typer.Option("--storage", help="Optuna storage URL.")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Processes on the study.")] = None,
) -> None:
    """Run or resume the study of each search space, then write results and report.md."""
    from .commands import run_search_command

    raise typer.Exit(run_search_command(spec, space, trials, timeout, storage, workers, out, err))


@app.command()
def report(
    spec: SpecOption = None,
    space: Annotated[Optional[list[Path]], typer.Option("--space", help="Only this space (repeatable).")] = None,
    storage: Annotated[Optional[str], typer.Option("--storage", help="Optuna storage URL.")] = None,
) -> None:
    """Write trials.csv, pareto.csv, models/, metrics.json and report.md from the stored studies."""
    from .commands import run_report_command

    raise typer.Exit(run_report_command(spec, space, storage, out))


@app.command()
def calibrate(
    target: Annotated[str, typer.Option("--target", help="Where latency is predicted (host).")] = "host",
    models: Annotated[int, typer.Option("--models", min=10, help="Models sampled and timed for the fit.")] = 400,
    holdout: Annotated[int, typer.Option("--holdout", min=1, help="Held-out models that score the fit.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the model sample.")] = 0,
    space: Annotated[Optional[list[Path]], typer.Option("--space", help="Spaces to sample (default: the spec's).")]
    = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Predictor file (default: "
                                                   "results/latency-predictor-<target>.json).")] = None,
    spec: SpecOption = None,
) -> None:
    """Fit the per-layer latency predictor on this machine; report its error on held-out models."""
    from .evaluate.calibrate import run_calibrate

    report = run_calibrate(target, space, models, seed, output, spec, holdout)
    held = report["holdout"]
    out.print(f"predictor: {report['out']}", markup=False)
    out.print(f"held-out models within +-10 %: {100 * held['within_10pct']:.1f} % of {held['n']} "
              f"(median APE {100 * held['median_ape']:.1f} %, p90 {100 * held['p90_ape']:.1f} %)", markup=False)


@app.command()
def dashboard(
    spec: SpecOption = None,
    space: Annotated[Optional[Path], typer.Option("--space", help="The space whose study to show.")] = None,
    storage: Annotated[Optional[str], typer.Option("--storage", help="Optuna storage URL.")] = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port on 127.0.0.1.")] = 8080,
) -> None:
    """Open optuna-dashboard on the study's storage, on 127.0.0.1 only."""
    from .commands import resolve_runs

    run = resolve_runs(spec, [space] if space else None, None, None, storage, None)[0]
    from .search.storage import open_storage, shown

    dashboard_module = require_extra("optuna_dashboard", "dashboard")
    out.print(f"optuna-dashboard on http://127.0.0.1:{port} ({shown(run.storage)})", markup=False)
    dashboard_module.run_server(open_storage(run.storage), host="127.0.0.1", port=port)


@app.command()
def targets(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """List the targets with their reflection: ops, dtypes, memory and flash limits."""
    from .targets.commands import targets_table

    rows = targets_table()
    if as_json:
        out.print(json.dumps(rows, indent=2), markup=False)
        return
    table = Table(title="targets")
    for col in ("target", "artifacts", "toolchain", "ops", "dtypes", "limits", "description"):
        table.add_column(col)
    for r in rows:
        ref = r["reflection"]
        ops_text = "all" if ref["ops"] is None else ", ".join(ref["ops"])
        limits = " ".join(f"{k.split('_')[0]} {v:,} B" for k, v in ref.items()
                          if k in ("sram_bytes", "flash_bytes") and v) or "-"
        table.add_row(r["name"], ", ".join(r["artifacts"]), r["toolchain"] or "-", ops_text,
                      ", ".join(ref["dtypes"]), limits, r["description"])
    out.print(table)


ModelDirArgument = Annotated[Path, typer.Argument(help="An exported model folder (results/<space>/models/<trial>).")]
ArtifactArgument = Annotated[Path, typer.Argument(help="An artifact folder written by explorer export.")]


@app.command()
def export(
    model_dir: ModelDirArgument,
    target: Annotated[str, typer.Option("--target", help="host, rpi, pico or fpga.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Artifact folder to write (replaced).")],
    variant: Annotated[Optional[str], typer.Option("--variant", help="Board variant, e.g. rp2040 or rp2350.")] = None,
    dtype: Annotated[Optional[str], typer.Option("--dtype", help="float32 or int8 where the target offers both.")]
    = None,
    total_bits: Annotated[Optional[int], typer.Option("--total-bits", min=4, max=32,
                                                      help="fpga: fixed-point word width (default 16).")] = None,
    frac_bits: Annotated[Optional[int], typer.Option("--frac-bits", min=0, max=31,
                                                     help="fpga: fractional bits (default 8, or 4 for 8-bit words).")]
    = None,
    firmware: Annotated[Optional[str], typer.Option("--firmware", help="fpga: env5 adds the ENV5 board skeleton.")]
    = None,
) -> None:
    """Turn a model folder into a target artifact with manifest.json (file hashes, model, target)."""
    from .targets import export as export_model

    options = {k: v for k, v in {"variant": variant, "dtype": dtype, "total_bits": total_bits,
                                 "frac_bits": frac_bits, "firmware": firmware}.items() if v is not None}
    found = export_model(target, model_dir, output, options)
    out.print(f"{output}: {target} artifact, {len(found['files'])} files "
              f"({found['model']['summary']})", markup=False)


@app.command("build")
def build_artifact(
    artifact: ArtifactArgument,
    target: TargetOption = None,
    toolchain: Annotated[str, typer.Option("--toolchain", help="auto (docker when a daemon answers), docker or "
                                           "native.")] = "auto",
) -> None:
    """Compile an artifact with its pinned toolchain, in Docker or natively (the same result)."""
    from .targets import build
    from .targets.commands import check_target

    from .targets.toolchain import ToolchainError

    check_target(artifact, target)
    try:
        found = build(artifact, toolchain)
    except ToolchainError as exc:  # the compiler's own words: its output tail, after one summary line
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    facts = {k: v for k, v in found["build"].items() if not isinstance(v, (dict, list))}
    out.print(f"{artifact}: built " + ", ".join(f"{k} {v}" for k, v in facts.items()), markup=False)


@app.command()
def bench(
    artifact: ArtifactArgument,
    target: TargetOption = None,
    board: Annotated[Optional[str], typer.Option("--board", help="Board name in the inventory (default: the "
                                                 "target's local runner or simulator).")] = None,
    inventory: Annotated[Optional[Path], typer.Option("--inventory", help="Board inventory (default: "
                                                      "boards.yaml).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Also write the metrics JSON here.")]
    = None,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Timed runs per input (the median counts).")] = 5,
    timeout: Annotated[Optional[float], typer.Option("--timeout", min=0.1, help="Seconds a board may stay silent "
                                                     "(default: the board's timeout, else 60).")] = None,
    runner: Annotated[Optional[str], typer.Option("--runner", help="rpi: torchscript, c or both (default).")]
    = None,
) -> None:
    """Measure a built artifact on a board: latency, accuracy on the exported inputs, agreement with PyTorch."""
    from .targets import BoardError
    from .targets import bench as bench_artifact
    from .targets.commands import check_target, resolve_board

    found = check_target(artifact, target)
    chosen = resolve_board(board, inventory, found["target"])
    try:
        options = {"repeats": repeats, "timeout": timeout, "runner": runner}
        metrics = bench_artifact(artifact, chosen, {k: v for k, v in options.items() if v is not None})
    except BoardError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    text = json.dumps(metrics, indent=2, sort_keys=True)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n")
    out.print(text, markup=False)


boards_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                         help="The lab's boards: health checks of the inventory.")
app.add_typer(boards_app, name="boards")


@boards_app.command("check")
def boards_check(
    inventory: Annotated[Path, typer.Option("--inventory", help="Board inventory.")] = Path("boards.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0.5, help="Seconds per board.")] = 5.0,
    lease_dir: Annotated[Optional[Path], typer.Option("--lease-dir", help="Lease folder (default: "
                                                      "$EXPLORER_LEASE_DIR or ~/.cache/explorer/leases).")] = None,
    record: Annotated[bool, typer.Option("--record", help="Write the outcome to the health files: a failing "
                                         "board leaves the pools, a passing one returns.")] = False,
) -> None:
    """One health row per board (reachable, auth, OS, disk, port, firmware, tools, lease); exit 1 if any is unhealthy."""
    from .boards.check import run_check

    code, text = run_check(inventory, as_json, timeout, lease_dir, record)
    out.print(text, markup=False)
    raise typer.Exit(code)


hil_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                      help="Hardware in the loop: measure candidates on boards and feed the values back.")
app.add_typer(hil_app, name="hil")
SpaceOption = Annotated[Optional[Path], typer.Option("--space", help="The space (default: the spec's first).")]


def _one_run(spec: Path | None, space: Path | None):
    from .commands import resolve_runs

    return resolve_runs(spec, [space] if space else None, None, None, None, None)[0]


def _boards(names: list[str] | None, inventory: Path | None, target: str) -> list:
    from .targets.commands import resolve_board

    return [resolve_board(name, inventory, target) for name in names or []]


@hil_app.command("ask")
def hil_ask(
    n: Annotated[int, typer.Option("--n", min=1, help="Trials to ask.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the trials' artifacts.")],
    space: SpaceOption = None,
    spec: SpecOption = None,
) -> None:
    """Run K trials up to the board and export their artifacts for the spec's hardware target."""
    from .hil.files import ask

    summary = ask(_one_run(spec, space), n, output)
    out.print(f"{output}: {len(summary['trials'])} trials for {summary['target']} "
              f"({', '.join(map(str, summary['trials'])) or 'none'})", markup=False)


@hil_app.command("measure")
def hil_measure(
    folder: Annotated[Path, typer.Argument(help="The folder explorer hil ask wrote.")],
    board: Annotated[Optional[str], typer.Option("--board", help="Board name in the inventory (default: the "
                                                 "target's local runner or simulator).")] = None,
    inventory: Annotated[Optional[Path], typer.Option("--inventory", help="Board inventory (default: boards.yaml).")]
    = None,
) -> None:
    """Build and measure every asked artifact on one board; a fault is recorded for its trial."""
    from .hil.files import ASKED, measure, read_json

    asked = folder / ASKED
    target = read_json(asked, ("target",))["target"] if asked.is_file() else "host"
    chosen = _boards([board] if board else None, inventory, target)
    records = measure(folder, chosen[0] if chosen else None)
    faults = [r for r in records if "fault" in r]
    for r in faults:
        err.print(f"trial {r['trial']}: {r['fault']}", markup=False)
    out.print(f"{folder}: measured {len(records) - len(faults)}, faults {len(faults)}", markup=False)


@hil_app.command("tell")
def hil_tell(
    folder: Annotated[Path, typer.Argument(help="The folder with measurements.")],
    space: SpaceOption = None,
    spec: SpecOption = None,
) -> None:
    """Put the measurements into the study, then rewrite the results and the report."""
    from .commands import finish
    from .hil.files import tell
    from .search.runner import load_study

    run = _one_run(spec, space)
    counts = tell(run, folder)
    out.print(f"{folder}: complete {counts['complete']}, failed {counts['failed']}, "
              f"waiting for a measurement {counts['waiting']}", markup=False)
    finish(run, load_study(run)[0], out)


@hil_app.command("export")
def hil_export(
    target: Annotated[str, typer.Option("--target", help="host, rpi, pico or fpga.")],
    toolchain: Annotated[str, typer.Option("--toolchain", help="auto, docker or native.")] = "auto",
    space: SpaceOption = None,
    spec: SpecOption = None,
) -> None:
    """Export and build the search's models (Pareto set and top-k) for a target: results/<space>/artifacts/<target>/."""
    from .hil.after import export_models

    run = _one_run(spec, space)
    found = export_models(run.results, target, toolchain=toolchain)
    out.print(f"{run.results / 'artifacts' / target}: built {len(found['built'])}, the target cannot run "
              f"{len(found['refused'])}", markup=False)


@hil_app.command("bench")
def hil_bench(
    target: Annotated[str, typer.Option("--target", help="host, rpi, pico or fpga.")],
    board: Annotated[Optional[list[str]], typer.Option("--board", help="Board name (repeatable; default: the "
                                                       "target's local runner or simulator).")] = None,
    inventory: Annotated[Optional[Path], typer.Option("--inventory", help="Board inventory (default: boards.yaml).")]
    = None,
    space: SpaceOption = None,
    spec: SpecOption = None,
) -> None:
    """Measure the exported models of a finished search on boards: results/<space>/bench/<target>.json
    (``explorer report`` adds the values to trials.csv, pareto.csv and report.md)."""
    from .hil.after import bench_artifacts, bench_file

    run = _one_run(spec, space)
    records = bench_artifacts(run.results, target, _boards(board, inventory, target))
    faults = [r for r in records if "fault" in r]
    for r in faults:
        err.print(f"trial {r['trial']} on {r['board']}: {r['fault']}", markup=False)
    out.print(f"{bench_file(run.results, target)}: measured {len(records) - len(faults)} model x board pairs, "
              f"not measured {len(faults)}", markup=False)


ci_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                     help="GitHub Actions steps: changed spaces, run context, the pull-request report and its comment.")
app.add_typer(ci_app, name="ci")
EventOption = Annotated[Optional[Path], typer.Option("--event", help="Webhook payload JSON (default: "
                                                     "$GITHUB_EVENT_PATH; recorded ones: .github/events/).")]


def _ci_root(spec: Path | None) -> tuple[Path, Path | None]:
    from .plugins import find_spec

    spec_path = spec or find_spec()
    return (spec_path.parent if spec_path else Path.cwd()), spec_path


@ci_app.command("changed-spaces")
def ci_changed_spaces(
    event: EventOption = None,
    base: Annotated[Optional[str], typer.Option("--base", help="Compare with this ref instead of the event's "
                                                "(merge-base semantics, like a pull request).")] = None,
    head: Annotated[Optional[str], typer.Option("--head", help="Head ref (default: the event's, else HEAD).")] = None,
    all_on: Annotated[Optional[list[str]], typer.Option("--all-on", help="A change here searches every space "
                                                        "(repeatable; default: params.yaml and engine/).")] = None,
    spec: SpecOption = None,
) -> None:
    """The search matrix {"space": [...]} of the spaces a pull request or push changed (also to $GITHUB_OUTPUT)."""
    from .ci.changes import DEFAULT_ALL_ON, changed_spaces
    from .ci.event import load_event
    from .ci.outputs import set_outputs

    root, spec_path = _ci_root(spec)
    loaded = None if base else load_event(event)
    changes = changed_spaces(root, loaded, base, head, tuple(all_on or DEFAULT_ALL_ON), spec_path)
    for note in changes.notes:
        err.print(note, markup=False)
    err.print(f"{changes.reason}: {', '.join(changes.spaces) or 'nothing to search'}", markup=False)
    matrix = json.dumps(changes.matrix(), separators=(",", ":"))
    set_outputs({"spaces": matrix, "any": "true" if changes.spaces else "false"})
    sys.stdout.write(matrix + "\n")


@ci_app.command("context")
def ci_context(event: EventOption = None) -> None:
    """trusted=true|false (false: a fork's pull request), pr=<number>, event=<name>; also to $GITHUB_OUTPUT."""
    from .ci.event import load_event
    from .ci.outputs import set_outputs

    loaded = load_event(event)
    values = {"trusted": "true" if loaded.trusted else "false", "pr": str(loaded.pr_number or ""),
              "event": loaded.name}
    set_outputs(values)
    for name, value in values.items():
        out.print(f"{name}={value}", markup=False)


@ci_app.command("report")
def ci_report(
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the markdown here "
                                                   "(default: standard output).")] = None,
    base: Annotated[str, typer.Option("--base", help="Branch for dvc metrics diff.")] = "main",
    artifact: Annotated[str, typer.Option("--artifact", help="Workflow artifact holding the PNG plots "
                                          "({space}: the space's name).")] = "results-{space}",
    spaces: Annotated[Optional[str], typer.Option("--spaces", help="Only these spaces: the changed-spaces matrix "
                                                  "JSON or comma-separated names (default: all with results).")]
    = None,
    spec: SpecOption = None,
) -> None:
    """The pull-request report in markdown from results/: Pareto tables, Mermaid charts, board measurements,
    dvc metrics diff against --base."""
    from .ci.report import build_report
    from .ci.results import parse_spaces

    root, spec_path = _ci_root(spec)
    text = build_report(root, spec_path, base, artifact, parse_spaces(spaces) if spaces is not None else None)
    if output is None:
        sys.stdout.write(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    out.print(f"{output}: {len(text):,} characters", markup=False)


@ci_app.command("comment")
def ci_comment(
    report: Annotated[Path, typer.Option("--report", help="The markdown from explorer ci report.")],
    repo: Annotated[Optional[str], typer.Option("--repo", help="OWNER/NAME (default: $GITHUB_REPOSITORY).")] = None,
    pr: Annotated[Optional[int], typer.Option("--pr", min=1, help="Pull request (default: the event's).")] = None,
    event: EventOption = None,
) -> None:
    """Upsert one sticky pull-request comment (found by its hidden marker) and write the job summary;
    a fork's pull request or a read-only token gets the job summary only."""
    from .ci.comment import post_report

    outcome = post_report(report, repo, pr, event)
    for line in outcome.lines:
        (err if outcome.code else out).print(line, markup=False)
    raise typer.Exit(outcome.code)


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors are one line each and exit code 2, never a traceback."""
    warnings.filterwarnings("ignore", message=r".*\bexperimental\b")  # Optuna flags features we rely on knowingly
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="explorer", standalone_mode=False)
    except UserError as exc:
        for line in exc.lines():
            err.print(line, markup=False)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted", markup=False)
        return 130
    except NoArgsIsHelpError as exc:
        out.print(exc.ctx.get_help() if exc.ctx else "", markup=False)
        return 2
    except UsageError as exc:
        where = f"explorer {exc.ctx.info_name}" if exc.ctx and exc.ctx.info_name != "explorer" else "explorer"
        err.print(f"error: {exc.format_message()} (hint: {where} --help)", markup=False)
        return 2
    except ClickException as exc:
        err.print(f"error: {exc.format_message()}", markup=False)
        return exc.exit_code
    except BoardError as exc:  # a board, a lease or the pool: no traceback, not the user's syntax
        err.print(f"error: {exc}", markup=False)
        return 1
    except OSError as exc:  # the user's file system or network: a path, a permission, a port in use
        where = f" ({exc.filename})" if exc.filename else ""
        err.print(f"error: {exc.strerror or exc}{where}", markup=False)
        return 2
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())

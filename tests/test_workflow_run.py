"""The pull-request workflows of a baked repo, run job by job on this machine (slow tier).

GitHub cannot run here (its runners, artifact store and API are the one thing missing), so
``local_actions`` stands in for checkout, artifacts and expressions, and runs every `run:` step
for real: `explorer ci context` / `changed-spaces` on the recorded events, the matrix search
through DVC, the HIL ask, the bench jobs of the host and of the simulated boards (QEMU Pico, GHDL
FPGA) picked from an inventory by `explorer boards check`, the tell, the report with
`dvc metrics diff main`, and the comment step (no token here: the job summary only). The
Raspberry Pi job needs an SSH board and is not run; its condition is checked.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from bakery import BIN, DEFAULTS, isolated_env, run_cookiecutter
from local_actions import LocalRunner

pytestmark = pytest.mark.slow

INVENTORY = """\
boards:
  - name: pico-sim
    kind: pico-serial
    variant: rp2350
    simulator: qemu-mps2-an505
    labels: [simulated]
  - name: fpga-sim
    kind: fpga
    simulator: ghdl
    labels: [simulated]
"""


def git(repo: Path, env: dict[str, str], *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false", *args]
    return subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def pull_request(tmp_path_factory):
    """A baked repo (every board) whose main has a test budget and a Pico hardware loop, and a
    branch that changes one space; the recorded events pointed at its commits."""
    root = tmp_path_factory.mktemp("workflow-run")
    home = root / "home"
    home.mkdir()
    env = isolated_env(home, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    result = run_cookiecutter(root / "out", DEFAULTS, home)
    assert result.returncode == 0, result.stdout + result.stderr
    repo = root / "out" / DEFAULTS["project"]
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["search"]["trials"] = 2
    params["train"]["epochs"] = 1
    params["export"]["top_k"] = 1
    params["hardware"] = {"target": "pico"}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(repo, env, "commit", "-qam", "test budget, Pico in the loop")
    base = git(repo, env, "rev-parse", "HEAD")
    git(repo, env, "checkout", "-qb", "my-space")
    with open(repo / "search_spaces" / "cnn1d.yaml", "a", encoding="utf-8") as space:
        space.write("# tried on a branch\n")
    git(repo, env, "commit", "-qam", "change cnn1d")
    head = git(repo, env, "rev-parse", "HEAD")
    events = {}
    for name in ("pull_request-opened", "pull_request-fork"):
        event = json.loads((repo / ".github" / "events" / f"{name}.json").read_text())
        event["pull_request"]["base"]["sha"], event["pull_request"]["head"]["sha"] = base, head
        events[name] = root / f"{name}.json"
        events[name].write_text(json.dumps(event))
    inventory = root / "boards.yaml"
    inventory.write_text(INVENTORY)
    env.update(EXPLORER_INVENTORY=str(inventory), EXPLORER_LEASE_DIR=str(root / "leases"),
               GITHUB_API_URL="http://127.0.0.1:9")  # nothing may leave the machine
    return repo, events, env, root


def test_pull_request_flow_runs_end_to_end(pull_request):
    repo, events, env, root = pull_request
    runner = LocalRunner(repo, events["pull_request-opened"], "pull_request", root / "same-repo", env)
    flow = runner.workflow("pull-request.yml")["jobs"]
    context = runner.run_job("context", flow["context"]).outputs
    assert context == {"trusted": "true", "pr": str(runner.event["number"])}

    search = runner.workflow("search.yml")["jobs"]
    changes = runner.run_job("changes", search["changes"]).outputs
    assert json.loads(changes["spaces"]) == {"space": ["cnn1d"]} and changes["any"] == "true"
    assert runner.runs(search["search"], needs={"changes": {"outputs": changes}})
    for space in json.loads(changes["spaces"])["space"]:
        runner.run_job(f"search-{space}", search["search"], matrix={"space": space})
    found = runner.artifacts / "search-cnn1d"
    assert (found / "results" / "cnn1d" / "optuna.db").is_file()
    assert json.loads((found / "hil" / "cnn1d" / "asked.json").read_text())["target"] == "pico"

    needs = {"context": {"outputs": context}, "search": {"outputs": changes}}
    assert runner.runs(flow["bench"], needs=needs)
    inputs = {"spaces": changes["spaces"], "trusted": context["trusted"] == "true"}
    bench = runner.workflow("bench.yml")["jobs"]
    assert list(bench) == ["host", "rpi", "pico", "fpga"]
    assert all(runner.runs(job, inputs=inputs) for job in bench.values())
    benched = {}
    for target in ("host", "pico", "fpga"):  # no Raspberry Pi over SSH here
        benched[target] = runner.run_job(f"bench-{target}", bench[target], inputs=inputs)
        assert (runner.artifacts / f"bench-{target}" / "results" / "cnn1d" / "bench" / f"{target}.json").is_file()
    assert "pico-sim: healthy" in benched["pico"].logs["Healthy pico boards of this runner"]
    assert "fpga-sim: healthy" in benched["fpga"].logs["Healthy fpga boards of this runner"]
    measured = sorted((runner.artifacts / "bench-pico" / "hil" / "cnn1d").glob("*/measurement.json"))
    assert len(measured) == 4 and all(json.loads(p.read_text())["board"] in ("pico-sim", "cache") for p in measured)
    pico = json.loads((runner.artifacts / "bench-pico" / "results" / "cnn1d" / "bench" / "pico.json").read_text())
    assert pico and all(r["board"] == "pico-sim" and "metrics" in r for r in pico), pico

    assert runner.runs(flow["report"], needs=needs)
    report = runner.run_job("report", runner.workflow("report.yml")["jobs"]["report"],
                            inputs={"spaces": changes["spaces"]})
    text = (runner.artifacts / "report" / "pr-report.md").read_text()
    assert text.startswith("<!-- explorer-report -->")
    assert "### `cnn1d`" in text and "```mermaid" in text and "pico-sim" in text and "Compared with `main`" in text
    assert "results/cnn1d/metrics.json" in text  # the dvc metrics diff table
    assert sorted(p.name for p in (runner.artifacts / "report" / "results" / "cnn1d").glob("*.png"))
    assert text.strip() in report.summary  # the job summary carries the same report
    assert "GITHUB_TOKEN is not set" in "".join(report.logs.values())
    told = yaml.safe_load((report.workspace / "results" / "cnn1d" / "metrics.json").read_text())
    assert told["trials"] == told["trials_complete"] == 2 + 4  # the search's 2 and the 4 asked, told


def test_fork_pull_request_never_reaches_a_board(pull_request):
    repo, events, env, root = pull_request
    runner = LocalRunner(repo, events["pull_request-fork"], "pull_request", root / "fork", env)
    context = runner.run_job("context", runner.workflow("pull-request.yml")["jobs"]["context"]).outputs
    assert context["trusted"] == "false"
    bench = runner.workflow("bench.yml")["jobs"]
    for trusted in (False, True):  # the head-repository condition holds even if the input were wrong
        inputs = {"spaces": '{"space":["cnn1d"]}', "trusted": trusted}
        assert [name for name, job in bench.items() if runner.runs(job, inputs=inputs)] == ["host"]

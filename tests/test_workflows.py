"""Every workflow, the template's own and each baked repo's, passes actionlint, the GitHub workflow
JSON schema and zizmor (no finding of medium severity or above), and follows the house rules:
least privilege (read-only everywhere, `pull-requests: write` only where the sticky comment is
posted), no trigger that runs a fork's code with the base repository's rights, pinned actions,
no expression inside a shell script, timeouts, superseded runs cancelled, and board jobs that a
fork's pull request never reaches and that never cancel a running measurement."""

import re
import subprocess

import pytest
import yaml

from bakery import CASES, TEMPLATE, targets, tool

# Actions a workflow may use, pinned by commit (each pair found in several public repositories'
# workflows with the same version comment).
PINS = {
    "actions/checkout": ("34e114876b0b11c390a56381ad16ebd13914f8d5", "v4.3.1"),
    "actions/setup-python": ("a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0"),
    "actions/cache": ("0057852bfaa89a56745cba8c7296529d2fc39830", "v4.3.0"),
    "actions/upload-artifact": ("ea165f8d65b6e75b540449e92b4886f43607fa02", "v4.6.2"),
    "actions/download-artifact": ("d3f86a106a0bac45b974a628896c90dbdf5c8093", "v4.3.0"),
}
LINTERS = {
    "actionlint": lambda files: [tool("actionlint"), "-no-color", *files],
    "check-jsonschema": lambda files: [
        tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files
    ],
    "zizmor": lambda files: [
        tool("zizmor"), "--offline", "--min-severity", "medium", "--no-progress", "--color", "never", *files
    ],
}
SOURCES = ["template", *CASES]
# Triggers that run with the base repository's token and secrets on behalf of a fork.
ESCALATING = ("pull_request_target", "workflow_run")
HEAD_REPO_CONDITION = "github.event.pull_request.head.repo.full_name == github.repository"
REUSABLE = "./.github/workflows/"


def workflows(baked, source):
    root = TEMPLATE if source == "template" else baked(source)
    files = sorted((root / ".github" / "workflows").glob("*.y*ml"))
    assert files, f"no workflow in {root}"
    return files


def load(path):
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as true
    return workflow


def triggers(workflow):
    on = workflow["on"]
    return [on] if isinstance(on, str) else list(on)


def runs_on(job):
    labels = job.get("runs-on", [])
    return [labels] if isinstance(labels, str) else list(labels)


def comments(job):
    """The job posts the sticky comment: it runs `explorer ci comment`."""
    return any("explorer ci comment" in step.get("run", "") for step in job.get("steps", []))


@pytest.mark.parametrize("linter", LINTERS)
@pytest.mark.parametrize("source", SOURCES)
def test_linter_passes(baked, source, linter):
    files = [str(path) for path in workflows(baked, source)]
    result = subprocess.run(LINTERS[linter](files), capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("source", SOURCES)
def test_house_rules(baked, source):
    paths = workflows(baked, source)
    names = {path.name for path in paths}
    for path in paths:
        text = path.read_text(encoding="utf-8")
        workflow = load(path)
        assert workflow["permissions"] == {"contents": "read"}, path
        assert not set(triggers(workflow)) & set(ESCALATING), path
        assert workflow["concurrency"]["cancel-in-progress"] is True, path
        assert "github.ref" in workflow["concurrency"]["group"], path
        for name, job in workflow["jobs"].items():
            where = f"{path}: job {name}"
            if "uses" in job:  # a reusable workflow of this repo: its own jobs have the timeouts
                assert job["uses"].startswith(REUSABLE) and job["uses"][len(REUSABLE):] in names, where
                assert "runs-on" not in job and "steps" not in job, where
            else:
                assert isinstance(job.get("timeout-minutes"), int), where
            for step in job.get("steps", []):
                assert "${{" not in step.get("run", ""), f"{where}: pass expressions through env:"
                if "uses" in step:
                    action, _, ref = step["uses"].partition("@")
                    sha, version = PINS[action]
                    assert ref == sha, f"{where}: {step['uses']}"
                    assert re.search(rf"{action}@{sha} # {re.escape(version)}\n", text), where
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, where


@pytest.mark.parametrize("source", SOURCES)
def test_write_permission_only_where_the_comment_is_posted(baked, source):
    """Read-only everywhere; `pull-requests: write` only on the job that comments, and on the job of
    pull-request.yml that calls report.yml (a caller's permissions cap the called workflow's). The
    token reaches no step but the comment."""
    commenting = []
    for path in workflows(baked, source):
        workflow = load(path)
        for name, job in workflow["jobs"].items():
            where = f"{path.name}: job {name}"
            granted = job.get("permissions", {})
            assert isinstance(granted, dict), f"{where}: list permissions one by one"
            writes = {scope for scope, level in granted.items() if level == "write"}
            calls_report = job.get("uses") == REUSABLE + "report.yml"
            if comments(job) or calls_report:
                assert granted == {"contents": "read", "pull-requests": "write"}, where
                commenting.append(where)
            else:
                assert not writes, where
            for step in job.get("steps", []):
                text = yaml.safe_dump(step)
                if "github.token" in text or "secrets." in text:
                    assert "explorer ci comment" in step.get("run", ""), f"{where}: the token goes to the comment only"
    if source != "template":
        assert commenting == ["pull-request.yml: job report", "report.yml: job report"]


@pytest.mark.parametrize("source", SOURCES)
def test_self_hosted_jobs_never_run_for_forks_and_are_serialised(baked, source):
    for path in workflows(baked, source):
        for name, job in load(path)["jobs"].items():
            if "self-hosted" not in runs_on(job):
                continue
            where = f"{path.name}: job {name}"
            assert HEAD_REPO_CONDITION in job.get("if", ""), where
            assert "inputs.trusted" in job["if"], f"{where}: the context job's verdict too"
            assert isinstance(job.get("timeout-minutes"), int), where
            assert job["concurrency"]["group"].startswith("board-"), where
            assert job["concurrency"]["cancel-in-progress"] is False, f"{where}: never cancel a measurement"
            assert job.get("permissions") in (None, {"contents": "read"}), where


@pytest.mark.parametrize("case", CASES)
def test_bench_jobs_follow_the_selected_boards(baked, case):
    """One bench job per target: the host on a hosted runner, each selected board kind on the lab's
    self-hosted runners that carry its label; none for a board that was not selected."""
    jobs = load(baked(case) / ".github" / "workflows" / "bench.yml")["jobs"]
    assert list(jobs) == targets(CASES[case])
    assert runs_on(jobs["host"]) == ["ubuntu-latest"]
    for board in list(jobs)[1:]:
        assert runs_on(jobs[board]) == ["self-hosted", "linux", board]
        assert jobs[board]["concurrency"]["group"] == f"board-{board}"


def test_pull_request_flow_is_chained(baked):
    """pull-request.yml holds the flow: context and search first, then bench, then report; only
    `pull_request` (and a manual run) start it."""
    repo = baked("default")
    workflow = load(repo / ".github" / "workflows" / "pull-request.yml")
    assert set(triggers(workflow)) == {"pull_request", "workflow_dispatch"}
    jobs = workflow["jobs"]
    assert jobs["search"]["uses"] == REUSABLE + "search.yml"
    assert jobs["bench"]["uses"] == REUSABLE + "bench.yml"
    assert jobs["report"]["uses"] == REUSABLE + "report.yml"
    assert set(jobs["bench"]["needs"]) == {"context", "search"}
    assert set(jobs["report"]["needs"]) == {"search", "bench"}
    assert "explorer ci context" in yaml.safe_dump(jobs["context"])
    assert "needs.context.outputs.trusted" in jobs["bench"]["with"]["trusted"]
    for called in ("search", "bench", "report"):
        assert "workflow_call" in triggers(load(repo / ".github" / "workflows" / f"{called}.yml")), called
    search = load(repo / ".github" / "workflows" / "search.yml")["jobs"]
    assert "explorer ci changed-spaces" in yaml.safe_dump(search["changes"])
    assert search["search"]["strategy"]["matrix"] == "${{ fromJSON(needs.changes.outputs.spaces) }}"
    assert "needs.changes.outputs.any == 'true'" in search["search"]["if"]

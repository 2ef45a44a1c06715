"""Run a baked repo's workflow jobs on this machine, for the tests.

GitHub itself (its runners, artifact storage, REST API) cannot run here, so this stands in for the
parts the generated workflows use, and nothing else:

- a job starts in a fresh clone of the repo at the pull request's head (what actions/checkout gives);
- a `run:` step is `bash -e -c SCRIPT` with the step's `env:` and the runner's files
  (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, RUNNER_TEMP); its outputs feed `steps.<id>.outputs`;
- expressions: the subset the workflows use (contexts, `== != && || !`, `fromJSON`, `cancelled`,
  `hashFiles`, literals) translated to Python; any other syntax raises, so a new construct in a
  workflow fails loudly instead of being misread;
- actions/upload-artifact and download-artifact keep artifacts as folders, with upload-artifact's
  rule for the root (the least common ancestor of the paths' search folders);
- setup-python, cache and the `Install ...` steps do nothing: the venv running the tests already
  has the engine and DVC, and nothing may be downloaded here.
"""

from __future__ import annotations

import fnmatch
import glob
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TOKEN = re.compile(r"\s*(?:('[^']*')|(\d+(?:\.\d+)?)|([A-Za-z_][\w.-]*)|(==|!=|&&|\|\||!|\(|\)|,))")
FUNCTIONS = {
    "fromJSON": "_fromjson",
    "cancelled": "_false",
    "hashFiles": "_hash",
}
NO_OP_ACTIONS = ("actions/checkout", "actions/setup-python", "actions/cache")


class Missing(str):
    """A property that is not there: GitHub gives null, which reads as '' and is falsy."""

    def __getattr__(self, name: str) -> Missing:
        return Missing()


class Node(dict):
    """A context object: properties by attribute, a missing one is ``Missing``."""

    def __getattr__(self, name: str) -> Any:
        value = self.get(name, Missing())
        return Node(value) if isinstance(value, dict) else value


def translate(expression: str) -> str:
    """A GitHub expression as a Python expression (only the subset above)."""
    out, position = [], 0
    expression = expression.strip()
    while position < len(expression):
        match = TOKEN.match(expression, position)
        if not match or match.end() == position:
            raise ValueError(f"unsupported expression syntax at {expression[position:]!r}")
        position = match.end()
        literal, number, name, operator = match.groups()
        if literal is not None:
            out.append(repr(literal[1:-1]))
        elif number is not None:
            out.append(number)
        elif name is not None:
            if name in ("true", "false", "null"):
                out.append({"true": "True", "false": "False", "null": "None"}[name])
            elif name in FUNCTIONS:
                out.append(FUNCTIONS[name])
            else:
                if "-" in name:
                    raise ValueError(f"property names with '-' are not supported: {name}")
                out.append(name)
        else:
            out.append({"&&": " and ", "||": " or ", "!": " not "}.get(operator, operator))
    return "".join(out)


def evaluate(expression: str, contexts: dict[str, Any]) -> Any:
    names = {key: Node(value) if isinstance(value, dict) else value for key, value in contexts.items()}
    names.update(_fromjson=json.loads, _false=lambda: False, _hash=lambda *patterns: "hash")
    return eval(translate(expression), {"__builtins__": {}}, names)  # noqa: S307 (translated subset only)


def render(value: Any, contexts: dict[str, Any]) -> Any:
    """A `with:`/`env:`/`if:` value: a whole `${{ }}` keeps its type, embedded ones become text."""
    if not isinstance(value, str):
        return value
    whole = re.fullmatch(r"\s*\$\{\{(.*?)\}\}\s*", value, re.S)
    if whole and "${{" not in whole.group(1):
        return evaluate(whole.group(1), contexts)
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: as_text(evaluate(m.group(1), contexts)), value)


def as_text(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    return "" if value is None else str(value)


def condition(value: Any, contexts: dict[str, Any]) -> bool:
    """An `if:`: with or without `${{ }}`."""
    if value is None:
        return True
    if isinstance(value, bool):
        return value
    text = value.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    return bool(evaluate(text, contexts))


def search_folder(pattern: str) -> str:
    """The part of an upload path before its first glob character, as a folder."""
    parts = []
    for part in pattern.strip().rstrip("/").split("/"):
        if any(ch in part for ch in "*?["):
            break
        parts.append(part)
    return "/".join(parts)


def common_root(folders: list[str]) -> str:
    split = [folder.split("/") for folder in folders]
    common = []
    for parts in zip(*split):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return "/".join(common)


@dataclass
class JobResult:
    outputs: dict[str, str]
    workspace: Path
    summary: str
    logs: dict[str, str] = field(default_factory=dict)


@dataclass
class LocalRunner:
    """Runs jobs of ``repo``'s workflows for one event, sharing one folder of artifacts."""

    repo: Path
    event_path: Path
    event_name: str
    work: Path
    env: dict[str, str]

    def __post_init__(self) -> None:
        self.event = json.loads(self.event_path.read_text())
        self.artifacts = self.work / "artifacts"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=self.repo, capture_output=True, text=True,
                                   check=True).stdout.strip()
        repository = ((self.event.get("pull_request") or {}).get("base") or {}).get("repo") or \
            self.event.get("repository") or {}
        self.github = {
            "event": self.event, "event_name": self.event_name, "repository": repository.get("full_name", ""),
            "workflow": "", "ref": f"refs/pull/{self.event.get('number', 0)}/merge",
            "base_ref": ((self.event.get("pull_request") or {}).get("base") or {}).get("ref", ""),
            "token": "",
        }

    def workflow(self, name: str) -> dict[str, Any]:
        workflow = yaml.safe_load((self.repo / ".github" / "workflows" / name).read_text())
        workflow["on"] = workflow.pop(True, workflow.get("on"))
        self.github["workflow"] = workflow.get("name", name)
        return workflow

    def contexts(self, **extra: Any) -> dict[str, Any]:
        return {"github": self.github, **extra}

    def runs(self, job: dict[str, Any], **extra: Any) -> bool:
        """Whether the job's `if:` lets it run."""
        return condition(job.get("if"), self.contexts(**extra))

    def run_job(self, label: str, job: dict[str, Any], **extra: Any) -> JobResult:
        workspace = self.work / f"job-{label}"
        temp = self.work / f"temp-{label}"
        for folder in (workspace, temp):
            shutil.rmtree(folder, ignore_errors=True)
        temp.mkdir(parents=True)
        subprocess.run(["git", "clone", "-q", "--no-local", str(self.repo), str(workspace)], check=True,
                       capture_output=True)
        subprocess.run(["git", "checkout", "-q", self.head], cwd=workspace, check=True, capture_output=True)
        contexts = self.contexts(**extra, steps={}, runner={"temp": str(temp), "os": "Linux"})
        summary = temp / "step-summary.md"
        logs = {}
        for index, step in enumerate(job["steps"]):
            name = step.get("name") or step.get("uses") or f"step {index}"
            if not condition(step.get("if"), contexts):
                continue
            uses = step.get("uses", "").split("@")[0]
            if uses == "actions/upload-artifact":
                self.upload(workspace, {k: render(v, contexts) for k, v in step["with"].items()})
                continue
            if uses == "actions/download-artifact":
                self.download(workspace, {k: render(v, contexts) for k, v in step["with"].items()})
                continue
            if uses in NO_OP_ACTIONS or name.startswith("Install "):
                continue
            if uses:
                raise ValueError(f"{label}: no stand-in for {uses}")
            output = temp / f"output-{index}"
            output.touch()
            env = {**os.environ, **self.env, "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary),
                   "GITHUB_EVENT_PATH": str(self.event_path), "GITHUB_EVENT_NAME": self.event_name,
                   "GITHUB_REPOSITORY": self.github["repository"], "GITHUB_SHA": self.head,
                   "GITHUB_RUN_ID": "4242", "GITHUB_SERVER_URL": "https://github.com", "RUNNER_TEMP": str(temp)}
            env.update({key: as_text(render(value, contexts)) for key, value in step.get("env", {}).items()})
            done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=workspace, env=env, capture_output=True,
                                  text=True, timeout=1800, check=False)
            logs[name] = done.stdout + done.stderr
            if done.returncode != 0:
                raise AssertionError(f"{label}: step {name!r} failed ({done.returncode}):\n{logs[name][-4000:]}")
            if "id" in step:
                lines = output.read_text().splitlines()
                contexts["steps"][step["id"]] = {"outputs": dict(line.split("=", 1) for line in lines if "=" in line)}
        outputs = {key: as_text(render(value, contexts)) for key, value in job.get("outputs", {}).items()}
        return JobResult(outputs, workspace, summary.read_text() if summary.exists() else "", logs)

    def upload(self, workspace: Path, options: dict[str, Any]) -> None:
        patterns = [line.strip() for line in options["path"].splitlines() if line.strip()]
        root = common_root([search_folder(pattern) for pattern in patterns])
        target = self.artifacts / options["name"]
        assert not target.exists(), f"artifact {options['name']} uploaded twice in one run"
        found = []
        for pattern in patterns:
            for match in glob.glob(str(workspace / pattern), recursive=True):
                path = Path(match)
                files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
                found += [p for p in files if not p.name.startswith(".")]  # include-hidden-files: false
        if not found:
            assert options.get("if-no-files-found", "warn") != "error", f"artifact {options['name']}: no files"
            return
        for path in found:
            relative = path.relative_to(workspace / root) if root else path.relative_to(workspace)
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / relative)

    def download(self, workspace: Path, options: dict[str, Any]) -> None:
        assert options.get("merge-multiple") is True, "the workflows merge the artifacts they download"
        destination = Path(options["path"]) if options.get("path") else workspace
        for artifact in sorted(self.artifacts.iterdir()):
            if fnmatch.fnmatchcase(artifact.name, options["pattern"]):
                shutil.copytree(artifact, destination, dirs_exist_ok=True)

"""Every workflow, the template's own and each baked repo's, passes actionlint, the GitHub workflow
JSON schema and zizmor (no finding of medium severity or above), and follows the house rules."""

import re
import subprocess

import pytest
import yaml

from bakery import CASES, TEMPLATE, tool

# Actions a workflow may use, pinned by commit (checked against several public repositories).
PINS = {
    "actions/checkout": ("34e114876b0b11c390a56381ad16ebd13914f8d5", "v4.3.1"),
    "actions/setup-python": ("a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0"),
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


def workflows(baked, source):
    root = TEMPLATE if source == "template" else baked(source)
    files = sorted((root / ".github" / "workflows").glob("*.y*ml"))
    assert files, f"no workflow in {root}"
    return files


@pytest.mark.parametrize("linter", LINTERS)
@pytest.mark.parametrize("source", SOURCES)
def test_linter_passes(baked, source, linter):
    files = [str(path) for path in workflows(baked, source)]
    result = subprocess.run(LINTERS[linter](files), capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("source", SOURCES)
def test_house_rules(baked, source):
    for path in workflows(baked, source):
        text = path.read_text(encoding="utf-8")
        workflow = yaml.safe_load(text)
        assert workflow["permissions"] == {"contents": "read"}, path
        assert workflow["concurrency"]["cancel-in-progress"] is True, path
        assert "github.ref" in workflow["concurrency"]["group"], path
        for name, job in workflow["jobs"].items():
            assert isinstance(job.get("timeout-minutes"), int), f"{path}: job {name}"
            for step in job.get("steps", []):
                assert "${{" not in step.get("run", ""), f"{path}: pass expressions through env:"
                if "uses" in step:
                    action, _, ref = step["uses"].partition("@")
                    sha, version = PINS[action]
                    assert ref == sha, f"{path}: {step['uses']}"
                    assert re.search(rf"{action}@{sha} # {re.escape(version)}\n", text), path
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, path

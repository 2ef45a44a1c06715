"""Option values: bad ones end the bake with one line and nothing written; odd but valid ones
(quotes, Jinja syntax, Unicode, long titles) land in the files exactly as given."""

import json
import subprocess
import tomllib

import pytest
import yaml

from bakery import DEFAULTS, TEMPLATE, run_cookiecutter

BAD_OPTIONS = [
    ("project", "bad slug!"),
    ("project", ""),
    ("project", "Upper"),
    ("project", "1abc"),
    ("project", "a/b"),
    ("project", "../x"),
    ("project", "x" * 64),
    ("project_name", "two\nlines"),
    ("project_name", "tab\there"),
    ("project_name", "x" * 201),
    ("project_name", ""),
    ("author", "Ada <ada@example.com>"),
    ("email", "not-an-email"),
    ("rpi", "maybe"),
    ("pico", "true"),
    ("fpga", ""),
    ("dataset", "mnist"),
    ("python_version", "3.10"),
    ("dvc_remote", "ftp"),
]
BAD_REMOTES = [
    ("none", "/srv/dvc"),
    ("local", ""),
    ("local", "relative/path"),
    ("local", "s3://bucket/x"),
    ("ssh", "storage.example.org:/srv/dvc"),
    ("ssh", "ssh://host"),
    ("s3", "s3://Bad_Bucket/x"),
    ("s3", "https://bucket.s3.amazonaws.com/x"),
]


def assert_rejected(result, output_dir, option):
    """Non-zero exit, one line on stderr naming the option, no traceback, nothing written."""
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: option {option}="), lines[0]
    assert "hint:" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert list(output_dir.iterdir()) == []


@pytest.mark.parametrize(("option", "value"), BAD_OPTIONS, ids=lambda v: repr(v)[:24])
def test_bad_value_is_rejected_cleanly(tmp_path, home, option, value):
    out = tmp_path / "out"
    out.mkdir()
    result = run_cookiecutter(out, {option: value}, home)
    assert_rejected(result, out, option)
    assert repr(value)[:20] in result.stderr


@pytest.mark.parametrize(("kind", "url"), BAD_REMOTES)
def test_bad_remote_url_is_rejected_cleanly(tmp_path, home, kind, url):
    out = tmp_path / "out"
    out.mkdir()
    result = run_cookiecutter(out, {"dvc_remote": kind, "dvc_remote_url": url}, home)
    assert_rejected(result, out, "dvc_remote_url")


ODD_NAMES = [
    "O'Brien's \"quoted\" \\ name",
    "{{ 7*7 }}",
    "{{",
    "}}{% if x %}{# c #}",
    "{% raw %}x{% endraw %}",
    "{{ cookiecutter.author }}",
    "Ünïcødé 😀 名前 مرحبا",
    "Näme-" * 40,
    "<b>&amp;</b> $HOME `date` ${{ github.token }}",
]


@pytest.mark.parametrize("name", ODD_NAMES, ids=range(len(ODD_NAMES)))
def test_odd_project_name_lands_exactly(cookies, name):
    result = cookies.bake(template=str(TEMPLATE), extra_context={"project_name": name})
    assert result.exit_code == 0, result.exception
    repo = result.project_path
    assert (repo / "README.md").read_text(encoding="utf-8").splitlines()[0] == f"# {name}"
    pyproject = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["description"] == name
    assert pyproject["project"]["authors"] == [{"name": DEFAULTS["author"], "email": DEFAULTS["email"]}]
    for path in [*repo.glob("*.yaml"), *repo.glob(".github/workflows/*.yml")]:
        yaml.safe_load(path.read_text(encoding="utf-8"))
    json.loads((repo / ".vscode/settings.json").read_text(encoding="utf-8"))


def test_odd_author_lands_in_commit_and_pyproject(cookies):
    author = "Zoë O'Connor-{{x}}"
    result = cookies.bake(template=str(TEMPLATE), extra_context={"author": author})
    assert result.exit_code == 0, result.exception
    repo = result.project_path
    pyproject = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["authors"][0]["name"] == author
    log = subprocess.run(
        ["git", "log", "--format=%an <%ae>"], cwd=repo, capture_output=True, text=True, check=True
    )
    assert log.stdout.strip() == f"{author} <{DEFAULTS['email']}>"

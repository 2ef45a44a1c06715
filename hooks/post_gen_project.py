"""Finish the generated experiment repo: prune, then git + DVC, then one commit on main.

Steps: remove what the unselected boards would bring (the ``_boards`` table in cookiecutter.json),
``git init -b main``, ``dvc init`` with analytics off, the chosen DVC remote as default, and one
initial commit that needs no git identity configured. Nothing here uses the network. A failing
step ends the bake with one line on stderr and exit code 1.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

# The options as JSON text in a Python string literal (JSON's string escapes mean the same in Python).
OPTIONS = json.loads({{ cookiecutter | tojson | tojson }})
sys.path.insert(0, {{ template_hooks_dir | tojson }})

import options  # noqa: E402  (hooks/options.py, found through the line above)

QUIET_ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_TERMINAL_PROMPT": "0"}


def fail(message: str) -> None:
    sys.exit(f"error: post_gen_project: {message}")


def run(*command: str) -> None:
    """Run one step; on failure show the command and the last line it printed."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=QUIET_ENV, check=False)
    except FileNotFoundError:
        fail(f"{command[0]} is not installed (hint: install it and bake again)")
    if done.returncode != 0:
        output = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        shown = " ".join("dvc" if part == sys.executable else part for part in command)
        fail(f"`{shown}` failed with exit code {done.returncode}: {output}")


def prune() -> None:
    for relative in options.pruned_paths(OPTIONS):
        path = Path(relative)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def init_repository() -> None:
    dvc = (sys.executable, "-m", "dvc")
    if importlib.util.find_spec("dvc") is None:
        fail(f"dvc is not installed for {sys.executable} (hint: pip install dvc next to cookiecutter)")
    run("git", "init", "-q", "-b", "main")
    run(*dvc, "init", "-q")
    run(*dvc, "config", "core.analytics", "false")
    if OPTIONS["dvc_remote"] != "none":
        run(*dvc, "remote", "add", "-d", "storage", OPTIONS["dvc_remote_url"])
    run("git", "add", "-A")
    identity = ("-c", f"user.name={OPTIONS['author']}", "-c", f"user.email={OPTIONS['email']}")
    message = f"Start {OPTIONS['project']} from the hardware-aware NAS template"
    run("git", *identity, "-c", "commit.gpgsign=false", "commit", "-q", "--no-verify", "-m", message)


prune()
init_repository()

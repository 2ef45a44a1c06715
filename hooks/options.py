"""The template's options: one rule per option and the board table, in one place.

Used twice: by ``local_extensions.py`` while cookiecutter resolves the options (so a bad value stops
the bake before any folder exists) and by ``pre_gen_project.py`` (which also covers ``--replay``,
where the options are not resolved again). ``post_gen_project.py`` and the Jinja templates use
``selected_boards`` / ``pruned_paths`` so that the board table in ``cookiecutter.json`` is the only
list of what each board brings.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

BOARDS = ("rpi", "pico", "fpga")
YES_NO = ("yes", "no")
DVC_REMOTES = ("none", "local", "ssh", "s3")
DATASETS = ("basicmotions", "gunpoint", "arrowhead", "italypowerdemand", "digits", "synthetic")
PYTHON_VERSIONS = ("3.11", "3.12", "3.13")

SLUG = re.compile(r"[a-z][a-z0-9-]{1,62}")
EMAIL = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+")
SSH_URL = re.compile(r"ssh://([A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+(:[0-9]{1,5})?/[^\s]+")
S3_URL = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?")
# Unicode categories that cannot sit on one line of YAML/TOML/Markdown as printable text:
# control characters (newline, tab, DEL, C1), surrogates, unassigned, line/paragraph separators.
NOT_PRINTABLE = {"Cc", "Cs", "Cn", "Zl", "Zp"}
MAX_TEXT = 200


class OptionError(ValueError):
    """A bad option value; ``str()`` is the one line shown to the user."""

    def __init__(self, option: str, value: Any, rule: str, hint: str) -> None:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        super().__init__(f"error: option {option}={shown} is invalid: {rule} (hint: {hint})")


def _printable_line(value: Any) -> bool:
    return (
        isinstance(value, str)
        and 1 <= len(value) <= MAX_TEXT
        and value == value.strip()
        and not any(unicodedata.category(ch) in NOT_PRINTABLE for ch in value)
    )


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda value: value in choices


def _matches(pattern: re.Pattern[str]) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, str) and pattern.fullmatch(value) is not None


TEXT_RULE = f"one line of 1-{MAX_TEXT} printable characters without leading/trailing spaces"

# option -> (check, rule, hint)
RULES: dict[str, tuple[Callable[[Any], bool], str, str]] = {
    "project": (
        _matches(SLUG),
        "must match ^[a-z][a-z0-9-]{1,62}$",
        "a folder name of lower-case letters, digits and '-', starting with a letter, "
        "e.g. project=nas-experiment",
    ),
    "project_name": (_printable_line, TEXT_RULE, "any title, e.g. project_name='Gesture NAS'"),
    "author": (
        lambda v: _printable_line(v) and "<" not in v and ">" not in v,
        TEXT_RULE + ", no '<' or '>'",
        "your name as git should record it",
    ),
    "email": (
        lambda v: _printable_line(v) and _matches(EMAIL)(v),
        "must look like name@domain.tld",
        "e.g. email=you@example.com",
    ),
    **{
        board: (_one_of(YES_NO), "must be yes or no", f"{board}=yes adds the board, {board}=no drops it")
        for board in BOARDS
    },
    "dvc_remote": (
        _one_of(DVC_REMOTES),
        "must be one of " + "|".join(DVC_REMOTES),
        "pick none, or give dvc_remote_url too",
    ),
    "dataset": (_one_of(DATASETS), "must be one of " + "|".join(DATASETS), "dataset=basicmotions is the default"),
    "python_version": (
        _one_of(PYTHON_VERSIONS),
        "must be one of " + "|".join(PYTHON_VERSIONS),
        "the Python the generated CI uses",
    ),
}

# dvc_remote kind -> (check of dvc_remote_url, rule, hint)
REMOTE_URL_RULES: dict[str, tuple[Callable[[Any], bool], str, str]] = {
    "none": (lambda v: v == "", "must be empty when dvc_remote=none", "set dvc_remote=local|ssh|s3 to use a URL"),
    "local": (
        lambda v: _printable_line(v) and "://" not in v and os.path.isabs(os.path.expanduser(v)),
        "must be an absolute filesystem path when dvc_remote=local",
        "e.g. dvc_remote_url=/srv/dvc-cache",
    ),
    "ssh": (
        _matches(SSH_URL),
        "must be ssh://[user@]host[:port]/path when dvc_remote=ssh",
        "e.g. dvc_remote_url=ssh://storage.example.org/srv/dvc",
    ),
    "s3": (
        _matches(S3_URL),
        "must be s3://bucket[/prefix] (bucket: 3-63 of a-z 0-9 . -) when dvc_remote=s3",
        "e.g. dvc_remote_url=s3://my-bucket/nas",
    ),
}


def validate(options: Mapping[str, Any]) -> None:
    """Raise ``OptionError`` for the first option that breaks its rule."""
    for option, (check, rule, hint) in RULES.items():
        value = options.get(option)
        if not check(value):
            raise OptionError(option, value, rule, hint)
    check, rule, hint = REMOTE_URL_RULES[options["dvc_remote"]]
    if not check(options.get("dvc_remote_url")):
        raise OptionError("dvc_remote_url", options.get("dvc_remote_url"), rule, hint)


def selected_boards(options: Mapping[str, Any]) -> list[str]:
    """The targets of this experiment: ``host`` always, then every board answered ``yes``."""
    return [board for board in options["_boards"] if board == "host" or options.get(board) == "yes"]


def dataset_excluded(options: Mapping[str, Any]) -> list[str]:
    """Example spaces the chosen dataset cannot feed (``exclude`` in the ``_datasets`` table)."""
    return list(options["_datasets"][options["dataset"]].get("exclude", []))


def selected_spaces(options: Mapping[str, Any]) -> list[str]:
    """Search-space files the selected boards bring and the dataset can feed, in table order."""
    chosen, excluded = selected_boards(options), dataset_excluded(options)
    return [
        path
        for board, paths in options["_boards"].items()
        if board in chosen
        for path in paths
        if path.startswith("search_spaces/") and path not in excluded
    ]


def pruned_paths(options: Mapping[str, Any]) -> list[str]:
    """Paths (relative to the generated repo) owned by boards that were not selected, and example
    spaces the dataset cannot feed."""
    chosen = selected_boards(options)
    unselected = [path for board, paths in options["_boards"].items() if board not in chosen for path in paths]
    return unselected + dataset_excluded(options)

"""The webhook payload that started a workflow run, read from ``$GITHUB_EVENT_PATH`` or a file.

The kind is told by the payload's shape, not by ``$GITHUB_EVENT_NAME``, so a recorded event
passed with ``--event`` means the same thing on any machine: a ``pull_request`` object makes
a pull request, ``before``/``after`` a push, anything else (``workflow_dispatch``, ``schedule``)
a run over the whole experiment.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError

ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class Event:
    payload: dict[str, Any]
    source: str  # where it was read from, for messages

    @property
    def kind(self) -> str:
        """``pull_request``, ``push`` or ``other``."""
        if isinstance(self.payload.get("pull_request"), dict):
            return "pull_request"
        if "before" in self.payload and "after" in self.payload:
            return "push"
        return "other"

    @property
    def name(self) -> str:
        """The event name GitHub gave (when the environment says so and it fits), else the kind."""
        given = os.environ.get("GITHUB_EVENT_NAME", "")
        if given and (given.startswith("pull_request") == (self.kind == "pull_request")):
            return given
        if self.kind == "other" and "inputs" in self.payload and "workflow" in self.payload:
            return "workflow_dispatch"
        return self.kind

    @property
    def pull_request(self) -> dict[str, Any]:
        return self.payload.get("pull_request") or {}

    @property
    def pr_number(self) -> int | None:
        number = self.pull_request.get("number", self.payload.get("number"))
        return number if isinstance(number, int) and self.kind == "pull_request" else None

    def shas(self) -> tuple[str | None, str | None]:
        """(base, head) of a pull request, (before, after) of a push, (None, None) otherwise."""
        if self.kind == "pull_request":
            return (self.pull_request.get("base") or {}).get("sha"), (self.pull_request.get("head") or {}).get("sha")
        if self.kind == "push":
            return self.payload.get("before"), self.payload.get("after")
        return None, None

    @property
    def repository(self) -> str | None:
        """``owner/name`` of the repository the workflow runs in (a pull request's base)."""
        if self.kind == "pull_request":
            name = ((self.pull_request.get("base") or {}).get("repo") or {}).get("full_name")
            if name:
                return name
        return (self.payload.get("repository") or {}).get("full_name")

    @property
    def trusted(self) -> bool:
        """False for a pull request whose head lives in another repository (a fork, or a deleted
        one): its code must not reach self-hosted runners or a token that can write."""
        if self.kind != "pull_request":
            return True
        head = (self.pull_request.get("head") or {}).get("repo")
        base = (self.pull_request.get("base") or {}).get("repo") or {}
        if not isinstance(head, dict) or not base:
            return False
        if head.get("id") is not None and base.get("id") is not None:
            return head["id"] == base["id"]
        return bool(head.get("full_name")) and head.get("full_name") == base.get("full_name")


def event_path(given: Path | None) -> Path | None:
    """``--event`` or ``$GITHUB_EVENT_PATH``; None when neither is set."""
    if given is not None:
        return given
    env = os.environ.get("GITHUB_EVENT_PATH")
    return Path(env) if env else None


def load_event(given: Path | None, required: bool = True) -> Event | None:
    """The payload at ``--event`` or ``$GITHUB_EVENT_PATH``; one-line errors for a missing or broken file."""
    path = event_path(given)
    if path is None:
        if required:
            raise UserError("no event payload: GITHUB_EVENT_PATH is not set",
                            hint="pass --event FILE, e.g. .github/events/pull_request-opened.json")
        return None
    if not path.is_file():
        raise UserError(f"{path}: no such event file", hint="pass --event FILE (recorded ones: .github/events/)")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a JSON event payload ({exc})") from None
    if not isinstance(payload, dict):
        raise UserError(f"{path}: an event payload is a JSON object")
    return Event(payload, str(path))

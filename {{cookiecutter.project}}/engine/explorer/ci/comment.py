"""One sticky pull-request comment: found by the report's hidden marker, updated in place.

The report always goes to the job summary first, so every way the comment can be refused
still leaves it readable: a fork's pull request (its token is read-only and its code is not
trusted: no API call at all), a token without ``pull-requests: write`` (HTTP 403), no token,
no pull request. Those end with one line and exit 0; a network failure or another API error
with one line and exit 1. The token is never printed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from .event import Event, load_event
from .github import DEFAULT_API, ApiError, GitHubAPI, NetworkError
from .outputs import write_summary
from .report import MARKER, run_url

COMMENT_LIMIT = 65536  # GitHub refuses a longer comment body
REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


@dataclass
class Outcome:
    code: int
    lines: list[str] = field(default_factory=list)


def truncate(body: str, limit: int = COMMENT_LIMIT) -> str:
    """``body`` cut to ``limit`` characters at a line end, open code fences and <details> closed,
    with a note saying where the whole report is."""
    if len(body) <= limit:
        return body
    url = run_url()
    note = ("\n\n> The report was cut at GitHub's 65,536-character comment limit; the whole report is in the "
            + (f"[job summary]({url})" if url else "job summary") + " of the workflow run.\n")
    kept = body[: limit - len(note) - 64]
    kept = kept[: kept.rfind("\n") + 1] if "\n" in kept else kept
    closing = ""
    if kept.count("```") % 2:
        closing += "```\n"
    closing += "</details>\n" * max(0, kept.count("<details>") - kept.count("</details>"))
    return kept + closing + note


def find_marked(api: GitHubAPI, repo: str, pr: int) -> int | None:
    """The id of the first comment whose body starts with the marker (a quote of it does not count)."""
    for comment in api.paginate(f"/repos/{repo}/issues/{pr}/comments?per_page=100"):
        if isinstance(comment, dict) and str(comment.get("body") or "").lstrip().startswith(MARKER):
            return int(comment["id"])
    return None


def upsert(api: GitHubAPI, repo: str, pr: int, body: str) -> tuple[str, int, str]:
    """('created' or 'updated', comment id, its URL)."""
    existing = find_marked(api, repo, pr)
    if existing is None:
        made, _ = api.request("POST", f"/repos/{repo}/issues/{pr}/comments", {"body": body})
        return "created", int(made["id"]), str(made.get("html_url", ""))
    made, _ = api.request("PATCH", f"/repos/{repo}/issues/comments/{existing}", {"body": body})
    return "updated", existing, str((made or {}).get("html_url", ""))


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text


def post_report(report: Path, repo: str | None = None, pr: int | None = None,
                event_file: Path | None = None) -> Outcome:
    """Job summary always; then the sticky comment when the event and the token allow it."""
    if not report.is_file():
        raise UserError(f"{report}: no such report", hint="explorer ci report -o FILE writes it")
    text = report.read_text(encoding="utf-8")
    if not text.lstrip().startswith(MARKER):
        text = f"{MARKER}\n{text}"
    summary = write_summary(text)
    where = "the job summary" if summary else "no job summary (GITHUB_STEP_SUMMARY is not set)"
    event: Event | None = load_event(event_file, required=False)
    if event is not None and not event.trusted:
        return Outcome(0, [f"pull request from a fork: its token is read-only, no comment; the report is in {where}"])
    number = pr if pr is not None else (event.pr_number if event else None)
    if number is None:
        return Outcome(0, [f"not a pull request: no comment; the report is in {where}"])
    repo = repo or os.environ.get("GITHUB_REPOSITORY") or (event.repository if event else None)
    if not repo or not REPO.fullmatch(repo):
        raise UserError(f"repository {repo!r} is not OWNER/NAME" if repo else "no repository to comment on",
                        hint="pass --repo OWNER/NAME (GitHub sets GITHUB_REPOSITORY)")
    token = os.environ.get("GITHUB_TOKEN", "")
    if not token:
        return Outcome(0, [f"GITHUB_TOKEN is not set: no comment on {repo}#{number}; the report is in {where}"])
    try:
        api = GitHubAPI(os.environ.get("GITHUB_API_URL") or DEFAULT_API, token)
        action, comment_id, url = upsert(api, repo, number, truncate(text))
    except ValueError as exc:  # an API URL the token must not go to
        raise UserError(_scrub(str(exc), token), hint="GITHUB_API_URL must be https (http only on loopback)") from None
    except ApiError as exc:
        if exc.status == 403:
            why = exc.message or "forbidden"
            return Outcome(0, [_scrub(f"the token cannot comment on {repo}#{number} (HTTP 403: {why}): "
                                      f"the report is in {where}", token)])
        hint = {401: " (the token was refused)", 404: " (no such repository or pull request, or no access)"}
        return Outcome(1, [_scrub(f"GitHub API error: {exc}{hint.get(exc.status, '')}", token)])
    except NetworkError as exc:
        return Outcome(1, [_scrub(f"network error: {exc}", token)])
    return Outcome(0, [f"{action} the report comment {comment_id} on {repo}#{number}" + (f": {url}" if url else "")])

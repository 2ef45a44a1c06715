"""Step outputs (``$GITHUB_OUTPUT``) and the job summary (``$GITHUB_STEP_SUMMARY``): plain files
GitHub reads after the step, so writing them needs no GitHub at all."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SUMMARY_LIMIT = 1024 * 1024  # GitHub refuses a step summary above 1 MiB


def set_outputs(values: dict[str, str]) -> Path | None:
    """Append ``name=value`` lines to ``$GITHUB_OUTPUT`` (a heredoc for multi-line values); None when unset."""
    target = os.environ.get("GITHUB_OUTPUT")
    if not target:
        return None
    lines = []
    for name, value in values.items():
        if "\n" in value or "\r" in value:
            delimiter = f"EOF_{secrets.token_hex(8)}"  # never a line of the value
            lines += [f"{name}<<{delimiter}", value, delimiter]
        else:
            lines.append(f"{name}={value}")
    with open(target, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return Path(target)


def write_summary(markdown: str) -> Path | None:
    """Append the markdown to the job summary; None when ``$GITHUB_STEP_SUMMARY`` is unset."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    data = markdown.encode("utf-8")
    if len(data) > SUMMARY_LIMIT - 200:
        note = "\n\n> The report was cut at the 1 MiB job-summary limit; the results artifact has all of it.\n"
        markdown = data[: SUMMARY_LIMIT - 200 - len(note)].decode("utf-8", errors="ignore") + note
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(markdown.rstrip("\n") + "\n")
    return Path(target)

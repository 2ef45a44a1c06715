"""Where artifacts are compiled: a pinned Docker image per toolchain when a daemon answers,
the same build script natively otherwise (``toolchains/<name>/build.sh`` serves both)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ..errors import UserError

CHOICES = ("auto", "docker", "native")


def toolchains_root() -> Path:
    """``toolchains/`` beside the engine (template and baked repo alike); ``EXPLORER_TOOLCHAINS`` overrides."""
    override = os.environ.get("EXPLORER_TOOLCHAINS")
    return Path(override) if override else Path(__file__).resolve().parents[3] / "toolchains"


def docker_available(timeout: float = 5.0) -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=timeout).returncode == 0
    except (subprocess.TimeoutExpired, OSError):
        return False


def resolve(choice: str, target) -> str:
    """``docker`` or ``native`` for ``choice``; asking for docker without a daemon is a user error."""
    if choice not in CHOICES:
        raise UserError(f"unknown toolchain {choice!r}", hint="one of: auto, docker, native")
    if target.toolchain is None:
        return "native"
    if choice == "auto":
        return "docker" if docker_available() else "native"
    if choice == "docker" and not docker_available():
        raise UserError("--toolchain docker: no Docker daemon answers",
                        hint="start dockerd, or use --toolchain native")
    return choice

"""Where artifacts are compiled: a pinned Docker image per toolchain when a daemon answers,
the same build script natively otherwise (``toolchains/<name>/build.sh`` serves both)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..errors import UserError

CHOICES = ("auto", "docker", "native")
BUILD_VARIABLES = ("CC", "CFLAGS", "LDFLAGS", "CPPFLAGS", "SOURCES")


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
    if choice == "auto":  # docker when a daemon answers and the image is there or builds offline
        usable = docker_available() and (getattr(target, "image_offline", True) or image_exists(image_tag(target.toolchain)))
        return "docker" if usable else "native"
    if choice == "docker" and not docker_available():
        raise UserError("--toolchain docker: no Docker daemon answers",
                        hint="start dockerd, or use --toolchain native")
    return choice


# --- pinned Docker images ------------------------------------------------------------------------
# A toolchain image is tagged with a hash of its folder (and of the base image script), so an image
# already on the machine is reused until a pin or a script changes; the base image comes from
# ``toolchains/base/make-base-image.sh`` (debootstrap + docker import: no registry is needed).

IMAGE_ROOT = "/opt/explorer/toolchain"  # where each Dockerfile copies its build scripts
MOUNT = "/artifact"                      # where the artifact folder is bind-mounted


class ToolchainError(RuntimeError):
    """A toolchain step failed; the message ends with the tail of its output."""


def _run(cmd: list[str], what: str, timeout: float | None = None, **kwargs) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"{what}: no result after {timeout:.0f} s") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise ToolchainError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done


def toolchain_folder(name: str) -> Path:
    folder = toolchains_root() / name
    if not (folder / "Dockerfile").is_file():
        known = sorted(p.parent.name for p in toolchains_root().glob("*/Dockerfile"))
        raise UserError(f"no toolchain {name!r} in {toolchains_root()}", hint=f"one of: {', '.join(known)}")
    return folder


def folder_hash(folder: Path) -> str:
    """sha256 over the relative paths, executable bits and contents of every file (sorted)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(b"x" if os.access(path, os.X_OK) else b"-")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _base_script() -> Path:
    return toolchains_root() / "base" / "make-base-image.sh"


def image_tag(name: str) -> str:
    """``explorer/<name>-toolchain:<12 hex>`` from the toolchain folder and the base image script."""
    digest = hashlib.sha256((folder_hash(toolchain_folder(name)) + "\0").encode())
    digest.update(_base_script().read_bytes())
    return f"explorer/{name}-toolchain:{digest.hexdigest()[:12]}"


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def base_tag() -> str:
    return _run(["bash", str(_base_script()), "--print-tag"], "make-base-image.sh").stdout.strip()


@contextmanager
def _exclusive(tag: str):
    """One builder per image on this machine: parallel jobs and test workers wait, then reuse it."""
    path = Path(tempfile.gettempdir()) / f"explorer-image-{hashlib.sha256(tag.encode()).hexdigest()[:12]}.lock"
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_base(timeout: float = 1800) -> str:
    """The pinned Debian base image's tag, built with debootstrap when missing (minutes, once)."""
    tag = base_tag()
    with _exclusive(tag):
        if not image_exists(tag):
            _run(["bash", str(_base_script())], f"building the base image {tag}", timeout=timeout)
    return tag


def ensure_image(name: str, timeout: float = 3600) -> str:
    """The tag of toolchain ``name``'s image; built (with host networking, for apt) only when missing."""
    tag = image_tag(name)
    if image_exists(tag):
        return tag
    base = ensure_base(timeout)
    with _exclusive(tag):
        if not image_exists(tag):
            _run(["docker", "build", "--network", "host", "--build-arg", f"BASE_IMAGE={base}",
                  "--label", f"explorer.toolchain={name}", "-t", tag, str(toolchain_folder(name))],
                 f"docker build {tag}", timeout=timeout, env={**os.environ, "DOCKER_CLI_HINTS": "false"})
    return tag


def _user() -> list[str]:
    """Run as the caller so files written into the bind mount are theirs, not root's."""
    return ["--user", f"{os.getuid()}:{os.getgid()}"] if hasattr(os, "getuid") else []


def run_in_image(name: str, artifact_dir: Path, script: str = "build.sh", args: list[str] | tuple = (),
                 timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run ``toolchains/<name>/<script> /artifact ARGS`` in the toolchain's image, offline (``--network
    none``), with ``artifact_dir`` bind-mounted read-write at ``/artifact``."""
    tag = ensure_image(name)
    artifact_dir = Path(artifact_dir).resolve()
    cmd = ["docker", "run", "--rm", "--network", "none", *_user(), "-e", "HOME=/tmp",
           "-v", f"{artifact_dir}:{MOUNT}", "-w", MOUNT, tag, f"{IMAGE_ROOT}/{script}", MOUNT, *map(str, args)]
    return _run(cmd, f"{name} toolchain ({tag}) {script}", timeout=timeout)


def run_native(name: str, artifact_dir: Path, script: str = "build.sh", args: list[str] | tuple = (),
               timeout: float = 1800) -> subprocess.CompletedProcess:
    """The same script with the tools installed on this machine."""
    path = toolchains_root() / name / script
    if not path.is_file():
        raise UserError(f"no {script} in toolchain {name!r}", hint=str(path.parent))
    env = {k: v for k, v in os.environ.items() if k not in BUILD_VARIABLES}  # the image sets none of them either
    return _run([str(path), str(Path(artifact_dir).resolve()), *map(str, args)],
                f"{name} toolchain (native) {script}", timeout=timeout, env=env)


def run(choice: str, name: str, artifact_dir: Path, script: str = "build.sh", args: list[str] | tuple = (),
        timeout: float = 1800) -> subprocess.CompletedProcess:
    """``run_in_image`` for ``docker``, ``run_native`` for ``native`` (a ``resolve`` result)."""
    runner = run_in_image if choice == "docker" else run_native
    return runner(name, artifact_dir, script, args, timeout)

"""A Docker daemon for the toolchain tests.

The machine's own daemon when ``docker info`` answers; otherwise a ``dockerd`` started here with no
bridge and no iptables rules (no container network, no traffic off the machine) on its own socket,
pid file and exec root, but on the default ``/var/lib/docker``, so images built by earlier runs (the
debootstrap base, the toolchain images) are reused. Only the daemon started here is stopped, by the
last test process that used it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from .services import unavailable

DATA_ROOT = "/var/lib/docker"


def docker_answers(env: dict | None = None, timeout: float = 10.0) -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=timeout,
                              env=env).returncode == 0
    except (subprocess.TimeoutExpired, OSError):
        return False


def _default_daemon_alive() -> bool:
    try:
        pid = int(Path("/var/run/docker.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


SHARED = Path("/tmp/explorer-dockerd")  # short: containerd's socket paths are limited to 108 bytes


@contextlib.contextmanager
def _locked():
    SHARED.mkdir(exist_ok=True)
    with open(SHARED / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def start_docker(wait: float = 60.0):
    """``(docker_host or None, stop)``: None means the already running default daemon.

    Test processes (xdist workers) share one daemon started here: each registers itself, the last
    one to leave stops it (two daemons on one data root would fight over containerd's database)."""
    if shutil.which("docker") is None:
        unavailable("docker (the client; apt-get install docker.io)")
    if docker_answers():
        return None, lambda: None
    if shutil.which("dockerd") is None:
        unavailable("dockerd (apt-get install docker.io)")
    if os.geteuid() != 0:
        unavailable("a Docker daemon (none answers, and starting dockerd needs root)")
    host = f"unix://{SHARED}/docker.sock"
    env = {**os.environ, "DOCKER_HOST": host}
    users = SHARED / "users"
    with _locked():
        if not docker_answers(env, timeout=5):
            if _default_daemon_alive():
                raise RuntimeError("a dockerd runs (/var/run/docker.pid) but does not answer `docker info`; "
                                   "not starting a second one on the same data root")
            _start(env, host, wait)
        users.mkdir(exist_ok=True)
        (users / str(os.getpid())).touch()

    def stop() -> None:
        with _locked():
            (users / str(os.getpid())).unlink(missing_ok=True)
            if any(_alive(int(p.name)) for p in users.iterdir()):
                return
            _stop()

    return host, stop


def _start(env: dict, host: str, wait: float) -> None:
    shutil.rmtree(SHARED / "exec", ignore_errors=True)
    with open(SHARED / "dockerd.log", "wb") as log:
        proc = subprocess.Popen(
            ["dockerd", "--bridge=none", "--iptables=false", "--ip6tables=false", "--data-root", DATA_ROOT,
             "--host", host, "--pidfile", str(SHARED / "docker.pid"), "--exec-root", str(SHARED / "exec")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    (SHARED / "pgid").write_text(str(proc.pid))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = (SHARED / "dockerd.log").read_text(errors="replace")[-1500:]
            _stop()
            raise RuntimeError(f"dockerd exited with status {proc.returncode}:\n{text}")
        if docker_answers(env, timeout=5):
            return
        time.sleep(0.5)
    _stop()
    raise RuntimeError(f"dockerd did not answer within {wait:.0f} s")


def _stop() -> None:
    """Stop the shared dockerd and wait for its whole process group: containerd holds the data
    root's database until it exits, and the next daemon must not find it locked."""
    try:
        pgid = int((SHARED / "pgid").read_text())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pgid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            os.killpg(pgid, 0)  # raises once no process of the group is left
            time.sleep(0.2)
        os.killpg(pgid, signal.SIGKILL)
    (SHARED / "pgid").unlink(missing_ok=True)
    shutil.rmtree(SHARED / "exec", ignore_errors=True)

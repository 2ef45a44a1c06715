"""A Docker daemon for the toolchain tests.

The machine's own daemon when ``docker info`` answers; otherwise a ``dockerd`` started here with no
bridge and no iptables rules (no container network, no traffic off the machine) on its own socket,
pid file and exec root, but on the default ``/var/lib/docker``, so images built by earlier runs (the
debootstrap base, the toolchain images) are reused. Only the daemon started here is stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
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


def start_docker(wait: float = 60.0):
    """``(docker_host or None, stop)``: None means the already running default daemon."""
    if shutil.which("docker") is None:
        unavailable("docker (the client; apt-get install docker.io)")
    if docker_answers():
        return None, lambda: None
    if shutil.which("dockerd") is None:
        unavailable("dockerd (apt-get install docker.io)")
    if os.geteuid() != 0:
        unavailable("a Docker daemon (none answers, and starting dockerd needs root)")
    if _default_daemon_alive():
        raise RuntimeError("a dockerd runs (/var/run/docker.pid) but does not answer `docker info`; "
                           "not starting a second one on the same data root")
    # Short paths: containerd's sockets live under the exec root, and socket paths are limited to 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="explorer-dockerd-", dir="/tmp"))
    host = f"unix://{folder}/docker.sock"
    log = open(folder / "dockerd.log", "wb")
    proc = subprocess.Popen(
        ["dockerd", "--bridge=none", "--iptables=false", "--ip6tables=false", "--data-root", DATA_ROOT,
         "--host", host, "--pidfile", str(folder / "docker.pid"), "--exec-root", str(folder / "exec")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    env = {**os.environ, "DOCKER_HOST": host}

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)

    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = (folder / "dockerd.log").read_text(errors="replace")[-1500:]
            stop()
            raise RuntimeError(f"dockerd exited with status {proc.returncode}:\n{text}")
        if docker_answers(env, timeout=5):
            return host, stop
        time.sleep(0.5)
    stop()
    raise RuntimeError(f"dockerd did not answer within {wait:.0f} s")

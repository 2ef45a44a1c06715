"""A real OpenSSH server on 127.0.0.1 standing in for a Raspberry Pi.

``start_sshd(folder)`` runs Debian's ``/usr/sbin/sshd -D -e`` on a free port with its own
host key and config, accepting one generated client key (key auth only, no passwords), and
writes a known_hosts file for the client. The "Pi" runs this machine's Python (torch is
installed) and aarch64 binaries through qemu-aarch64, so the rpi target's SSH, SFTP, runner and
C-binary paths are the ones a real board sees.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .services import free_port, unavailable

SSHD = "/usr/sbin/sshd"
QEMU_AARCH64 = ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"]


@dataclass
class Sshd:
    """A running sshd and the files a client needs to reach it."""

    process: subprocess.Popen
    port: int
    folder: Path
    user: str
    identity_file: Path
    known_hosts: Path
    host_key: Path
    log: Path
    stopped: bool = field(default=False)

    def board(self, name: str = "pi-sim", **overrides):
        """An inventory ``Board`` for this server (the Pi's Python is ours; binaries run under qemu)."""
        from explorer.boards import Board

        fields = dict(name=name, kind="rpi-ssh", variant="rpi4", host="127.0.0.1", port=self.port, user=self.user,
                      identity_file=str(self.identity_file), known_hosts=str(self.known_hosts),
                      workdir=str(self.folder / "remote"), python=sys.executable,
                      exec_wrapper=[] if os.uname().machine == "aarch64" else QEMU_AARCH64, timeout=60.0)
        fields.update(overrides)
        return Board(**fields)

    def descendants(self) -> list[int]:
        """sshd's per-connection processes and the commands they run (sshd starts sessions with setsid,
        so a process group would miss them); found through /proc parent links."""
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            for child in children.get(pid, []):
                found.append(child)
                todo.append(child)
        return found

    def signal_all(self, sig: int) -> None:
        """Send ``sig`` to the server and every process it started (a board losing power: SIGKILL;
        a hung board: SIGSTOP)."""
        for pid in [self.process.pid, *self.descendants()]:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.signal_all(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.stopped = True

    def stop(self) -> None:
        if not self.stopped:
            self.signal_all(signal.SIGCONT)
            self.signal_all(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
            self.stopped = True


def require_pi_tools() -> None:
    """The cross compiler and qemu-aarch64 that build and run the Pi's C benchmark here."""
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        unavailable("the aarch64 cross compiler (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross)")
    if os.uname().machine != "aarch64" and shutil.which("qemu-aarch64") is None:
        unavailable("qemu-aarch64 (qemu-user)")


def keygen(path: Path, comment: str) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True,
                   capture_output=True)
    return path


def known_hosts_line(port: int, host_key_pub: Path) -> str:
    kind, blob = host_key_pub.read_text().split()[:2]
    return f"[127.0.0.1]:{port} {kind} {blob}\n"


def start_sshd(folder: Path, wait: float = 10.0) -> Sshd:
    """sshd on 127.0.0.1 at a free port, key auth for the current user (root: key only)."""
    if not Path(SSHD).is_file() or shutil.which("ssh-keygen") is None:
        unavailable("OpenSSH server (openssh-server)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    # Privilege separation needs this empty root-owned folder (the package's service unit makes it).
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    host_key = keygen(folder / "host_ed25519", "explorer-test-host")
    client_key = keygen(folder / "client_ed25519", "explorer-test-client")
    (folder / "authorized_keys").write_text((folder / "client_ed25519.pub").read_text())
    port = free_port()
    known_hosts = folder / "known_hosts"
    known_hosts.write_text(known_hosts_line(port, folder / "host_ed25519.pub"))
    config = folder / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {host_key}",
        f"PidFile {folder / 'sshd.pid'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "UsePAM no",
        "StrictModes no",
        "UseDNS no",
        "X11Forwarding no",
        "PrintMotd no",
        "AcceptEnv LANG",
        "Subsystem sftp internal-sftp",
        "LogLevel VERBOSE",
        "",
    ]))
    log = folder / "sshd.log"
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    deadline = time.monotonic() + wait
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}: {log.read_text()[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"sshd did not listen on port {port} within {wait:g} s: {log.read_text()[-500:]}")
        time.sleep(0.05)
    user = pwd.getpwuid(os.getuid()).pw_name
    return Sshd(process, port, folder, user, client_key, known_hosts, host_key, log)

"""SSH transport to a board (Raspberry Pi): connect with a verified host key, upload with SFTP,
run a program and read its JSON-lines results.

The host key is checked against a known_hosts file like OpenSSH does (``Board.known_hosts``, or
``~/.ssh/known_hosts`` and ``/etc/ssh/ssh_known_hosts``); an unknown or changed key is refused,
never added. Authentication is by key only. Every blocking step has a deadline: a board that is
off, hung or killed mid-run ends in one ``BoardError`` line within seconds, not a hang.
"""

from __future__ import annotations

import collections
import posixpath
import socket
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .protocol import BoardError, EventStream, LineReader

CONNECT_TIMEOUT = 5.0  # TCP connect, SSH banner, key exchange, authentication, opening a channel
STDERR_LINES = 20
DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts")


def _paramiko():
    import logging

    import paramiko

    # paramiko logs a link failure's traceback from its own thread; without a handler Python prints
    # it to stderr. The failure reaches the caller as one BoardError line instead.
    logger = logging.getLogger("paramiko")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return paramiko


def host_key_name(host: str, port: int) -> str:
    """The name OpenSSH files a host's key under: ``host`` on port 22, else ``[host]:port``."""
    return host if port == 22 else f"[{host}]:{port}"


def known_hosts_files(board: Any) -> list[Path]:
    if board.known_hosts:
        return [Path(board.known_hosts).expanduser()]
    return [p for p in (Path(f).expanduser() for f in DEFAULT_KNOWN_HOSTS) if p.is_file()]


def find_known_host(files: list[Path], name: str) -> tuple[Path, int] | None:
    """(file, line number) of the first known_hosts entry for ``name`` (hashed names included)."""
    paramiko = _paramiko()
    for file in files:
        try:
            lines = file.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                entry = paramiko.hostkeys.HostKeyEntry.from_line(line, number)
            except Exception:  # noqa: BLE001 - an odd line is skipped, as OpenSSH does
                continue
            for pattern in entry.hostnames if entry is not None else []:
                if pattern == name or (pattern.startswith("|1|")
                                       and paramiko.HostKeys.hash_host(name, pattern) == pattern):
                    return file, number
    return None


def fingerprint(key: Any) -> str:
    """``ssh-ed25519 SHA256:...`` as ``ssh-keygen -l`` prints it."""
    import base64
    import hashlib

    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"{key.get_name()} SHA256:{digest}"


class SshBoard:
    """One SSH connection to a board; a context manager.

        with SshBoard(board) as pi:
            remote = pi.upload(artifact, "explorer-bench/1a2b")
            events = pi.run(f"cd {remote} && python3 runner.py", timeout=30)
            events.expect_ready(); results = events.results(16); events.finish()
    """

    def __init__(self, board: Any, connect_timeout: float = CONNECT_TIMEOUT):
        self.board = board
        self.connect_timeout = connect_timeout
        self.where = f"{board.name} ({board.user}@{board.host}:{board.port})"
        self._client = None
        self._sftp = None
        self._runs: list[RemoteRun] = []

    # ------------------------------------------------------------------ connection

    def __enter__(self) -> SshBoard:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def connect(self) -> None:
        paramiko = _paramiko()
        board = self.board
        files = known_hosts_files(board)
        if board.known_hosts and not files[0].exists():
            raise BoardError(f"{self.where}: known_hosts file {files[0]} does not exist "
                             "(add the board's key with ssh-keyscan after checking its fingerprint)")
        client = paramiko.SSHClient()
        for file in files:
            try:
                client.load_host_keys(str(file))
            except (OSError, paramiko.SSHException, paramiko.hostkeys.InvalidHostKey) as exc:
                why = f"invalid line {exc.line[:60]!r}" if isinstance(exc, paramiko.hostkeys.InvalidHostKey) else exc
                raise BoardError(f"{self.where}: cannot read known_hosts file {file}: {why}") from None
        policy = _recording_reject_policy(paramiko)
        client.set_missing_host_key_policy(policy)
        key_file = str(Path(board.identity_file).expanduser()) if board.identity_file else None
        if key_file and not Path(key_file).is_file():
            raise BoardError(f"{self.where}: identity file {key_file} does not exist")
        name = host_key_name(board.host, board.port)
        started = time.monotonic()
        try:
            client.connect(board.host, port=board.port, username=board.user, key_filename=key_file,
                           allow_agent=key_file is None, look_for_keys=key_file is None,
                           timeout=self.connect_timeout, banner_timeout=self.connect_timeout,
                           auth_timeout=self.connect_timeout, channel_timeout=self.connect_timeout)
        except paramiko.BadHostKeyException as exc:
            client.close()
            found = find_known_host(files, name)
            at = f"{found[0]}:{found[1]}" if found else " and ".join(map(str, files))
            raise BoardError(f"{self.where}: host key changed: the board offers {fingerprint(exc.key)}, "
                             f"which differs from {at}; refusing to connect (a reinstalled board or an "
                             f"impostor: check the fingerprint, then ssh-keygen -R '{name}')") from None
        except paramiko.PasswordRequiredException:
            client.close()
            raise BoardError(f"{self.where}: identity file {key_file} is encrypted (use an unencrypted "
                             "deploy key, or leave identity_file unset and use ssh-agent)") from None
        except paramiko.AuthenticationException:
            client.close()
            using = f"key {key_file}" if key_file else "ssh-agent and ~/.ssh keys"
            raise BoardError(f"{self.where}: authentication failed with {using} "
                             f"(is its public key in ~{board.user}/.ssh/authorized_keys?)") from None
        except paramiko.SSHException as exc:
            client.close()
            if policy.offered is not None:
                where = " and ".join(map(str, files)) or "~/.ssh/known_hosts (missing)"
                raise BoardError(
                    f"{self.where}: host key unknown: {name} is not in {where} (the board offers "
                    f"{fingerprint(policy.offered)}); refusing to connect (check the fingerprint on the board, "
                    "then add it with ssh-keyscan; keys are never added automatically)") from None
            waited = time.monotonic() - started
            if waited >= self.connect_timeout * 0.8:
                raise BoardError(f"{self.where}: the SSH server did not answer within {waited:.0f} s "
                                 "(board hung or the port is not SSH)") from None
            if "banner" in str(exc).lower():
                raise BoardError(f"{self.where}: not an SSH server ({_one_line(exc)}; is the port right?)") from None
            raise BoardError(f"{self.where}: SSH failed: {_one_line(exc)}") from None
        except paramiko.ssh_exception.NoValidConnectionsError:
            client.close()
            raise BoardError(f"{self.where}: connection refused (no SSH server on port {board.port})") from None
        except socket.gaierror as exc:
            client.close()
            raise BoardError(f"{self.where}: unknown host name {board.host!r} ({exc.strerror})") from None
        except (TimeoutError, socket.timeout):
            client.close()
            raise BoardError(f"{self.where}: unreachable (no answer within {self.connect_timeout:g} s; "
                             "is the board on and on the network?)") from None
        except OSError as exc:
            client.close()
            raise BoardError(f"{self.where}: unreachable ({exc.strerror or exc})") from None
        self._client = client

    def close(self) -> None:
        for run in self._runs:
            run.close()
        self._runs.clear()
        if self._sftp is not None:
            try:
                self._sftp.close()
            except Exception:  # noqa: BLE001 - closing a dead link
                pass
            self._sftp = None
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self):
        if self._client is None:
            raise BoardError(f"{self.where}: not connected")
        return self._client

    @contextmanager
    def deadline(self, seconds: float, doing: str) -> Iterator[None]:
        """Bound a blocking paramiko call: past ``seconds`` the connection is closed under it (paramiko
        has no timeout for some requests), and any link failure becomes one ``BoardError`` line."""
        fired = threading.Event()
        client = self.client

        def expire() -> None:
            fired.set()
            client.close()

        timer = threading.Timer(seconds, expire)
        timer.daemon = True
        timer.start()
        try:
            yield
        except BoardError:
            raise
        except Exception as exc:  # noqa: BLE001 - paramiko, socket and SFTP errors alike
            if fired.is_set():
                raise BoardError(f"{self.where}: no answer within {seconds:g} s while {doing} (board hung?)") from None
            raise BoardError(f"{self.where}: link failed while {doing}: {_one_line(exc)}") from None
        finally:
            timer.cancel()
        if fired.is_set():
            raise BoardError(f"{self.where}: no answer within {seconds:g} s while {doing} (board hung?)")

    # ------------------------------------------------------------------ files

    def remote_path(self, path: str) -> str:
        """A remote path as SFTP and the shell both read it: absolute, or relative to the home folder."""
        return path[2:] if path.startswith("~/") else path

    def sftp(self):
        if self._sftp is None:
            with self.deadline(self.connect_timeout, "opening SFTP"):
                self._sftp = self.client.open_sftp()
        return self._sftp

    def exists(self, remote: str) -> bool:
        sftp = self.sftp()
        with self.deadline(self.connect_timeout, f"looking for {remote}"):
            try:
                sftp.stat(self.remote_path(remote))
                return True
            except FileNotFoundError:
                return False

    def makedirs(self, remote: str) -> None:
        sftp, path = self.sftp(), self.remote_path(remote)
        with self.deadline(self.connect_timeout, f"creating {remote}"):
            current = "/" if path.startswith("/") else ""
            for part in [p for p in path.split("/") if p]:
                current = posixpath.join(current, part) if current else part
                try:
                    if not stat.S_ISDIR(sftp.stat(current).st_mode):
                        raise BoardError(f"{self.where}: remote {current} exists and is not a folder")
                except FileNotFoundError:
                    sftp.mkdir(current)

    def upload(self, local_dir: Path, remote_dir: str, timeout: float | None = None) -> str:
        """Copy ``local_dir`` recursively to ``remote_dir`` (created; files keep their mode bits)."""
        local_dir = Path(local_dir)
        files = sorted(p for p in local_dir.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in files)
        # The board's timeout plus 1 s per MB at a slow 1 MB/s (Wi-Fi, SD card).
        timeout = timeout if timeout is not None else self.board.timeout + size / 1e6
        remote_dir = self.remote_path(remote_dir)
        self.makedirs(remote_dir)
        sftp = self.sftp()
        with self.deadline(timeout, f"uploading {local_dir.name} to {remote_dir}"):
            for folder in sorted({p.parent for p in files} - {local_dir}, key=lambda p: len(p.parts)):
                target = posixpath.join(remote_dir, folder.relative_to(local_dir).as_posix())
                try:
                    sftp.stat(target)
                except FileNotFoundError:
                    sftp.mkdir(target)
            for file in files:
                target = posixpath.join(remote_dir, file.relative_to(local_dir).as_posix())
                sftp.put(str(file), target)
                sftp.chmod(target, stat.S_IMODE(file.stat().st_mode))
        return remote_dir

    def rmtree(self, remote: str) -> None:
        sftp, path = self.sftp(), self.remote_path(remote)
        with self.deadline(self.board.timeout, f"removing {remote}"):
            self._rmtree(sftp, path)

    def _rmtree(self, sftp, path: str) -> None:
        for entry in sftp.listdir_attr(path):
            child = posixpath.join(path, entry.filename)
            if stat.S_ISDIR(entry.st_mode):
                self._rmtree(sftp, child)
            else:
                sftp.remove(child)
        sftp.rmdir(path)

    def rename(self, old: str, new: str) -> None:
        sftp = self.sftp()
        with self.deadline(self.connect_timeout, f"renaming {old}"):
            sftp.posix_rename(self.remote_path(old), self.remote_path(new))

    # ------------------------------------------------------------------ programs

    def run(self, command: str, timeout: float, source: str | None = None) -> RemoteRun:
        """Start ``command`` (a shell command line) and return its event stream; every wait for the
        next event has ``timeout`` seconds. The program's stderr is kept for error messages."""
        # sshd starts each command in a new session, so the remote shell's pid is also its process
        # group: reported on stderr first, it lets a run the host gives up on be killed by id
        # (closing the channel alone leaves a hung program running on the board).
        wrapped = f"echo explorer-pid $$ >&2; {command}"
        with self.deadline(self.connect_timeout, "starting a remote command"):
            channel = self.client.get_transport().open_session(timeout=self.connect_timeout)
            channel.exec_command(wrapped)
        run = RemoteRun(self, channel, command, source or f"{self.board.name}", timeout)
        self._runs.append(run)
        return run

    def check_output(self, command: str, timeout: float | None = None) -> str:
        """Run a short command to its end; its stdout, or a ``BoardError`` with the exit code and stderr."""
        timeout = timeout or self.board.timeout
        with self.deadline(timeout, f"running {command.split()[0] if command else command}"):
            channel = self.client.get_transport().open_session(timeout=self.connect_timeout)
            channel.exec_command(command)
            out = channel.makefile("rb").read().decode("utf-8", "replace")
            err = channel.makefile_stderr("rb").read().decode("utf-8", "replace")
            status = channel.recv_exit_status()
        if status != 0:
            raise BoardError(f"{self.where}: `{_short(command)}` failed with exit code {status}{_tail(err)}")
        return out


class RemoteRun(EventStream):
    """The JSON-lines events of one remote program; ``finish()`` checks its exit code."""

    def __init__(self, board: SshBoard, channel: Any, command: str, source: str, timeout: float):
        self.board = board
        self.channel = channel
        self.command = command
        self.pid: int | None = None
        self.stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._stderr_done = threading.Event()
        self._lines = LineReader(channel.makefile("rb"), source)
        threading.Thread(target=self._pump_stderr, args=(channel.makefile_stderr("rb"),), daemon=True).start()
        super().__init__(self._readline, source, timeout)

    def _pump_stderr(self, stream) -> None:
        try:
            for raw in iter(lambda: stream.readline(1 << 16), b""):
                line = raw.decode("utf-8", "replace").rstrip()
                if self.pid is None and line.startswith("explorer-pid "):
                    self.pid = int(line.split()[1])
                elif line:
                    self.stderr.append(line)
        except (OSError, ValueError, EOFError):
            pass
        finally:
            self._stderr_done.set()

    def _readline(self, timeout: float) -> str | None:
        line = self._lines.readline(timeout)
        if line is None:  # stdout ended: a failed program is reported with its exit code and stderr
            status = self.exit_status(min(max(timeout, 0.5), 5.0))
            if status is None:
                raise BoardError(f"{self.source}: connection to {self.board.where} lost while running "
                                 f"`{_short(self.command)}`{_tail(self.stderr_text())}")
            if status != 0:
                raise BoardError(f"{self.source}: `{_short(self.command)}` failed with "
                                 f"{_status(status)}{_tail(self.stderr_text())}")
        return line

    def exit_status(self, timeout: float) -> int | None:
        """The exit code (-1: killed by a signal), or None when the link died before it came."""
        if not self.channel.status_event.wait(timeout):
            return None
        status = self.channel.exit_status
        transport = self.channel.get_transport()
        if status == -1 and (transport is None or not transport.is_active()):
            return None  # the channel closed because the connection did, not because the program ended
        self._stderr_done.wait(1.0)
        return status

    def stderr_text(self) -> str:
        self._stderr_done.wait(0.5)
        return "\n".join(self.stderr)

    def finish(self, timeout: float | None = None) -> None:
        """Wait for the program's end; a non-zero exit is a ``BoardError`` with the stderr tail."""
        status = self.exit_status(timeout if timeout is not None else self.timeout)
        if status is None:
            raise BoardError(f"{self.source}: `{_short(self.command)}` did not exit within {self.timeout:g} s")
        if status != 0:
            raise BoardError(f"{self.source}: `{_short(self.command)}` failed with {_status(status)}"
                             f"{_tail(self.stderr_text())}")
        self.close()

    def abort(self) -> None:
        """Stop the remote program (by the pid its shell reported) and close the channel."""
        transport = self.channel.get_transport()
        if self.pid and not self.channel.status_event.is_set() and transport is not None and transport.is_active():
            try:
                with self.board.deadline(5.0, "stopping the remote program"):
                    kill = transport.open_session(timeout=2.0)
                    group = f"-{self.pid}"
                    kill.exec_command(f"kill -TERM {group} 2>/dev/null && sleep 1; kill -KILL {group} 2>/dev/null")
                    kill.status_event.wait(3.0)
                    kill.close()
            except BoardError:  # best effort on a failing link
                pass
        self.close()

    def close(self) -> None:
        try:
            self.channel.close()
        except Exception:  # noqa: BLE001
            pass


def run_remote(board: SshBoard, command: str, count: int, timeout: float,
               source: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(ready event, ``count`` results) of a remote program, like ``local.run_program``: a crash,
    silence, garbage or a lost link is one ``BoardError`` line (with the program's stderr tail)."""
    run = board.run(command, timeout, source)
    try:
        ready = run.expect_ready()
        results = run.results(count)
        run.finish()
        return ready, results
    except BoardError as exc:
        run.abort()
        text = str(exc)
        stderr = run.stderr_text()
        if stderr and "stderr:" not in text:
            text += _tail(stderr)
        raise BoardError(text) from None


def _status(status: int) -> str:
    return "a signal (killed or crashed)" if status == -1 else f"exit code {status}"


def _tail(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return f" (stderr: {lines[-1][:300]})" if lines else ""


def _short(command: str, limit: int = 120) -> str:
    return command if len(command) <= limit else command[: limit - 3] + "..."


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _recording_reject_policy(paramiko):
    """paramiko's ``RejectPolicy`` that remembers the refused key, so the error shows its fingerprint."""

    class Policy(paramiko.RejectPolicy):
        offered = None

        def missing_host_key(self, client, hostname, key):
            self.offered = key
            super().missing_host_key(client, hostname, key)

    return Policy()


__all__ = ["RemoteRun", "SshBoard", "find_known_host", "fingerprint", "host_key_name", "run_remote"]

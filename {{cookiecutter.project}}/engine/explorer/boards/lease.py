"""Lease locks: one board, one user at a time, across threads, processes and runners.

A lease folder (``$EXPLORER_LEASE_DIR``, default ``~/.cache/explorer/leases``; runners that share
boards share the folder) holds one ``<board>.lease.json`` per board::

    {"board", "owner", "pid", "host", "machine", "start", "token", "acquired", "expires"}

Every read-modify-write of a board's files runs under ``flock`` on ``<board>.lock`` and writes a
temporary file then ``os.replace``s it, so two takers never both win and a reader never sees half a
record. ``flock``, not ``lockf``: flock locks belong to an open file, so two threads of one process
exclude each other too (POSIX record locks are per process and would let both threads in).

A held lease is renewed by a background thread every ttl/3. A lease whose ``expires`` has passed is
stale and is taken over: a SIGKILLed or frozen holder stops renewing, so after at most ttl someone
else gets the board. Chosen shortcut: a holder on the *same machine* (same boot id and pid
namespace, so containers with their own pids never match) whose process is gone (no such pid, a
zombie, or a pid reused by a younger process) is taken over at once, since it can never release;
``reclaim_dead=False`` waits for the expiry instead. Times are wall-clock seconds (``time.time``)
because the file is shared between processes and hosts.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..targets.protocol import BoardError

DEFAULT_TTL = 30.0
MIN_TTL = 0.3
POLL = 0.05  # seconds between attempts while waiting for a busy board
LOCK_WAIT = 10.0  # the lock file guards microsecond-long updates; longer means a frozen process


class LeaseError(BoardError):
    """The lease folder cannot be used (permissions, a lock never released)."""


class LeaseBusy(LeaseError):
    """The board stayed leased by someone else for the whole wait."""


class LeaseLost(LeaseError):
    """Someone took the lease over while it was held (the holder was frozen past its expiry)."""


def default_lease_dir() -> Path:
    return Path(os.environ.get("EXPLORER_LEASE_DIR") or Path.home() / ".cache" / "explorer" / "leases")


def default_owner() -> str:
    """Who holds the board, as people read it: the GitHub Actions job when run by a runner."""
    if os.environ.get("GITHUB_RUN_ID"):
        repo = os.environ.get("GITHUB_REPOSITORY", "github")
        return f"{repo} run {os.environ['GITHUB_RUN_ID']} job {os.environ.get('GITHUB_JOB', '?')}"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user} pid {os.getpid()}"


def machine_id() -> str:
    """This kernel boot and pid namespace: pids are comparable only between processes that share it."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return f"{socket.gethostname()}/unknown"
    return f"{boot}/{namespace}"


def process_start(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot; None for no such process or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        if not Path("/proc/self/stat").exists():  # no procfs: ask the kernel whether the pid exists
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return None
            except PermissionError:
                pass
            return 0
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):  # a SIGKILLed child nobody has reaped yet: dead for our purposes
        return None
    return int(fields[19])


def holder_alive(record: dict[str, Any]) -> bool:
    """False only when the holder surely is gone: same machine, and its pid is dead or reused."""
    if record.get("machine") != machine_id():
        return True
    start = process_start(int(record.get("pid", 0)))
    if start is None:
        return False
    recorded = record.get("start")
    return not (recorded and start and start != recorded)


def describe(record: dict[str, Any] | None, now: float | None = None) -> str:
    """``owner (pid 123 on host), 12 s left`` for tables and error messages."""
    if not record:
        return "free"
    left = float(record.get("expires", 0)) - (now if now is not None else time.time())
    return (f"{record.get('owner', '?')} (pid {record.get('pid', '?')} on {record.get('host', '?')}), "
            f"{max(left, 0):.0f} s left")


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically: readers see the old or the new file, never a torn one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(temporary, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """The file's object; None when missing or unreadable (only a hand edit can tear it)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class LeaseFolder:
    """The shared folder of lease and health files; every update runs under the board's lock."""

    def __init__(self, folder: Path | str | None = None):
        self.folder = Path(folder).expanduser() if folder else default_lease_dir()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LeaseError(f"cannot create the lease folder {self.folder}: {exc.strerror or exc}") from None

    def path(self, board: str, kind: str = "lease") -> Path:
        return self.folder / f"{board}.{kind}.json"

    @contextlib.contextmanager
    def lock(self, board: str) -> Iterator[None]:
        """Exclusive access to ``board``'s files (``flock`` on ``<board>.lock``)."""
        try:
            fd = os.open(self.folder / f"{board}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise LeaseError(f"cannot open the lock file of {board} in {self.folder}: {exc.strerror or exc}") from None
        try:
            deadline = time.monotonic() + LOCK_WAIT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LeaseError(f"the lock file {self.folder / (board + '.lock')} stayed locked for "
                                         f"{LOCK_WAIT:g} s (a frozen process holds it?)") from None
                    time.sleep(0.005)
            yield
        finally:
            os.close(fd)  # closing the file drops the flock

    def read(self, board: str, kind: str = "lease") -> dict[str, Any] | None:
        return read_json(self.path(board, kind))

    def write(self, board: str, data: dict[str, Any], kind: str = "lease") -> None:
        write_json(self.path(board, kind), data)

    def holder(self, board: str, now: float | None = None) -> dict[str, Any] | None:
        """The live lease record of ``board``, or None when it is free (no lease, expired, or released)."""
        record = self.read(board)
        now = time.time() if now is None else now
        if record is None or float(record.get("expires", 0)) <= now:
            return None
        return record

    def try_take(self, board: str, owner: str, ttl: float,
                 reclaim_dead: bool = True) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(our new record, None) when ``board`` was free, stale or left by a dead process;
        (None, the holder's record) when someone holds it."""
        with self.lock(board):
            now = time.time()
            current = self.holder(board, now)
            if current is not None and (not reclaim_dead or holder_alive(current)):
                return None, current
            pid = os.getpid()
            record = {"board": board, "owner": owner, "pid": pid, "host": socket.gethostname(),
                      "machine": machine_id(), "start": process_start(pid), "token": uuid.uuid4().hex,
                      "acquired": now, "expires": now + ttl}
            if current is not None:
                record["took_over_from"] = describe(current, now)
            self.write(board, record)
            return record, None

    def renew(self, board: str, token: str, ttl: float) -> dict[str, Any] | None:
        """Push our lease's expiry to now + ttl; None when it is no longer ours."""
        with self.lock(board):
            record = self.read(board)
            if record is None or record.get("token") != token:
                return None
            record["expires"] = time.time() + ttl
            self.write(board, record)
            return record

    def release(self, board: str, token: str) -> bool:
        """Give the board back; False when the lease was no longer ours (nothing is touched then)."""
        with self.lock(board):
            record = self.read(board)
            if record is None or record.get("token") != token:
                return False
            self.path(board).unlink(missing_ok=True)
            return True


class Lease:
    """A lease on one board; a context manager that acquires on entry and releases on exit.

        with Lease("pi-1", ttl=30, wait=600) as lease:
            ...  # the board is ours; a thread renews the lease every ttl/3

    Leaving the block after the lease was taken over (``lost``) raises ``LeaseLost``: whatever ran
    may have shared the board with another job.
    """

    def __init__(self, board: str, owner: str | None = None, ttl: float = DEFAULT_TTL, wait: float | None = 0.0,
                 folder: LeaseFolder | Path | str | None = None, reclaim_dead: bool = True, poll: float = POLL):
        if ttl < MIN_TTL:
            raise ValueError(f"lease ttl must be at least {MIN_TTL} s")
        self.board = board
        self.owner = owner or default_owner()
        self.ttl = float(ttl)
        self.wait = wait
        self.folder = folder if isinstance(folder, LeaseFolder) else LeaseFolder(folder)
        self.reclaim_dead = reclaim_dead
        self.poll = poll
        self.record: dict[str, Any] | None = None
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    @property
    def held(self) -> bool:
        return self.record is not None and not self._lost.is_set()

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def try_acquire(self) -> bool:
        """Take the lease if it is free now; no waiting."""
        if self.record is not None:
            raise LeaseError(f"lease on {self.board} is already held by this object")
        record, _ = self.folder.try_take(self.board, self.owner, self.ttl, self.reclaim_dead)
        if record is None:
            return False
        self.record = record
        self._lost.clear()
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, daemon=True, name=f"lease {self.board}")
        self._renewer.start()
        return True

    def acquire(self, wait: float | None = None) -> Lease:
        """Take the lease, polling up to ``wait`` seconds (None: forever); ``LeaseBusy`` after that."""
        wait = self.wait if wait is None else wait
        deadline = None if wait is None else time.monotonic() + wait
        while not self.try_acquire():
            if deadline is not None and time.monotonic() >= deadline:
                holder = self.folder.holder(self.board)
                raise LeaseBusy(f"board {self.board} stayed busy for {wait:g} s: held by {describe(holder)}")
            time.sleep(self.poll)
        return self

    def _renew(self) -> None:
        record = self.record
        assert record is not None
        expires = record["expires"]
        while not self._stop.wait(self.ttl / 3):
            try:
                renewed = self.folder.renew(self.board, record["token"], self.ttl)
            except (LeaseError, OSError):  # a passing folder problem: try again until the lease expires
                if time.time() >= expires:
                    self._lost.set()
                    return
                continue
            if renewed is None:
                self._lost.set()
                return
            expires = renewed["expires"]

    def release(self) -> None:
        """Stop renewing and give the board back (a no-op when not held)."""
        record, self.record = self.record, None
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        if record is not None and not self.folder.release(self.board, record["token"]):
            self._lost.set()

    def __enter__(self) -> Lease:
        if self.record is None:
            self.acquire()
        return self

    def __exit__(self, kind, exc, tb) -> None:
        self.release()
        if self.lost and exc is None:
            raise LeaseLost(f"the lease on board {self.board} was taken over while held (this process was frozen "
                            f"past its {self.ttl:g} s lease?): the measurement may have shared the board")


def acquire(board: str, owner: str | None = None, ttl: float = DEFAULT_TTL, wait: float | None = 0.0,
            folder: LeaseFolder | Path | str | None = None, reclaim_dead: bool = True) -> Lease:
    """A held ``Lease`` on ``board`` (usable in ``with``); ``LeaseBusy`` when still held after ``wait`` s."""
    return Lease(board, owner, ttl, wait, folder, reclaim_dead).acquire()


def holder(board: str, folder: LeaseFolder | Path | str | None = None) -> dict[str, Any] | None:
    """The live lease record of ``board`` (owner, pid, host, acquired, expires), or None when free."""
    return (folder if isinstance(folder, LeaseFolder) else LeaseFolder(folder)).holder(board)


__all__ = ["DEFAULT_TTL", "Lease", "LeaseBusy", "LeaseError", "LeaseFolder", "LeaseLost", "acquire",
           "default_lease_dir", "describe", "holder"]

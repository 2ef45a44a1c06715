"""``explorer boards check``: one health row per board, all boards checked in parallel.

A Pi (rpi-ssh): TCP reachable, SSH key auth with a verified host key, a 64-bit OS (``uname -m``
and ``getconf LONG_BIT``: a 64-bit kernel under 32-bit Raspberry Pi OS is still 32-bit for the
runner; a simulated Pi whose ``exec_wrapper`` is qemu-aarch64 passes as "aarch64 emulated"), and
free space in the workdir's file system. A Pico (pico-serial): the port is present and usable and
the firmware answers HELLO with its ready line (only while the check holds the board's lease, so
a running measurement is never disturbed); the simulated Pico needs qemu-system-arm and
arm-none-eabi-gcc. An FPGA: its simulator (``ghdl --version``) or a vendor tool on PATH. Every
row also shows the lease holder and the persisted health (``pool.report_fault``).

Each board has ``timeout`` seconds; a board still silent by then is reported as such and left
behind (its daemon thread never delays the exit). Any failure is one line in its row, never a
traceback. ``record=True`` writes the outcome into the lease folder's health files, so a failing
board leaves every pool and a passing one returns (what the runner kit's timer does).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..targets.protocol import BoardError
from .inventory import Board, load_inventory
from .lease import Lease, LeaseFolder, describe
from .pool import describe_health, read_health, set_health

DEFAULT_TIMEOUT = 5.0
MIN_FREE_MB = 512  # an artifact is small, but a full SD card fails uploads and corrupts the runner's logs
SIXTY_FOUR_BIT = ("aarch64", "arm64")


@dataclass
class Check:
    name: str
    ok: bool | None  # None: skipped (e.g. the board is busy)
    detail: str


@dataclass
class Row:
    board: str
    kind: str
    checks: list[Check] = field(default_factory=list)
    lease: dict[str, Any] | None = None
    health: dict[str, Any] | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        healthy = self.health is None or self.health["healthy"]
        return healthy and bool(self.checks) and all(c.ok is not False for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"board": self.board, "kind": self.kind, "ok": self.ok, "checks": [asdict(c) for c in self.checks],
                "lease": self.lease, "health": self.health, "seconds": round(self.seconds, 3)}


class _Budget:
    """The seconds left of one board's check."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def left(self, floor: float = 0.2) -> float:
        return max(self.deadline - time.monotonic(), floor)


def _strip(text: str, where: str) -> str:
    """A BoardError line without the board prefix the row already shows."""
    return text[len(where) + 2:] if text.startswith(where + ": ") else text


def _first_line(argv: list[str], timeout: float) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{Path(argv[0]).name}: {exc}"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else f"{Path(argv[0]).name} (exit {done.returncode})"


# ---------------------------------------------------------------------- rpi-ssh

def check_rpi(board: Board, budget: _Budget, checks: list[Check], folder: LeaseFolder) -> None:
    from ..targets.ssh import SshBoard

    try:
        with socket.create_connection((board.host, board.port), timeout=budget.left()):
            pass
    except socket.gaierror as exc:
        checks.append(Check("reachable", False, f"unknown host name {board.host!r} ({exc.strerror})"))
        return
    except ConnectionRefusedError:
        checks.append(Check("reachable", False, f"connection refused on {board.host}:{board.port} "
                                                "(board off, or no SSH server on that port)"))
        return
    except (TimeoutError, socket.timeout):
        checks.append(Check("reachable", False, f"{board.host}:{board.port} did not answer within "
                                                f"{budget.left(0):.1f} s (board off or not on the network?)"))
        return
    except OSError as exc:
        checks.append(Check("reachable", False, f"{board.host}:{board.port}: {exc.strerror or exc}"))
        return
    checks.append(Check("reachable", True, f"{board.host}:{board.port}"))

    ssh = SshBoard(board, connect_timeout=budget.left())
    try:
        ssh.connect()
    except BoardError as exc:
        checks.append(Check("ssh", False, _strip(str(exc), ssh.where)))
        return
    try:
        checks.append(Check("ssh", True, f"key auth as {board.user}, host key verified"))
        workdir = ssh.remote_path(board.workdir)
        # The workdir may not exist yet: df the nearest folder that does.
        script = (f"uname -m; getconf LONG_BIT; d={shlex.quote(workdir)}; "
                  'while [ ! -e "$d" ]; do d=$(dirname "$d"); done; df -Pk "$d" | tail -n 1')
        try:
            lines = ssh.check_output(script, timeout=budget.left()).split("\n")
        except BoardError as exc:
            checks.append(Check("os", False, _strip(str(exc), ssh.where)))
            return
        checks.append(os_check(board, *(lines + ["", ""])[:2]))
        checks.append(disk_check(lines[2] if len(lines) > 2 else "", board.workdir))
    finally:
        ssh.close()


def os_check(board: Board, machine: str, long_bit: str) -> Check:
    machine, long_bit = machine.strip(), long_bit.strip()
    wrapper = Path(board.exec_wrapper[0]).name if board.exec_wrapper else ""
    if machine in SIXTY_FOUR_BIT and long_bit in ("64", ""):
        return Check("os", True, f"{machine}, 64-bit")
    if wrapper.startswith("qemu-aarch64"):
        return Check("os", True, f"{machine} host, aarch64 emulated by {wrapper} (a simulated Pi)")
    if machine in SIXTY_FOUR_BIT:
        return Check("os", False, f"{machine} kernel with a {long_bit}-bit user space: install the 64-bit OS "
                                  "(GitHub runners no longer support 32-bit ARM)")
    return Check("os", False, f"{machine or 'unknown machine'}: not a 64-bit ARM OS (install the 64-bit "
                              "Raspberry Pi OS; GitHub runners no longer support 32-bit ARM)")


def disk_check(df_line: str, workdir: str) -> Check:
    fields = df_line.split()
    try:
        free_mb = int(fields[3]) / 1024
    except (IndexError, ValueError):
        return Check("disk", False, f"cannot read the free space of {workdir}: {df_line.strip()[:80]!r}")
    mount = fields[5] if len(fields) > 5 else "?"
    text = f"{free_mb / 1024:.1f} GB free on {mount}" if free_mb >= 1024 else f"{free_mb:.0f} MB free on {mount}"
    if free_mb < MIN_FREE_MB:
        return Check("disk", False, f"{text} (less than {MIN_FREE_MB} MB: clean {workdir} or the SD card)")
    return Check("disk", True, text)


# ---------------------------------------------------------------------- pico-serial

def check_pico(board: Board, budget: _Budget, checks: list[Check], folder: LeaseFolder) -> None:
    if board.simulator:
        tools_present(checks, [("simulator", "qemu-system-arm", "apt-get install qemu-system-arm"),
                               ("toolchain", "arm-none-eabi-gcc", "apt-get install gcc-arm-none-eabi")], budget)
        return
    port = serial_port(board, checks)
    if port is None:
        return
    lease = Lease(board.name, "explorer boards check", ttl=max(budget.left() * 2, 5.0), folder=folder)
    if not lease.try_acquire():
        checks.append(Check("firmware", None, f"handshake skipped: in use by {describe(folder.holder(board.name))}"))
        return
    try:
        from ..targets.serial_link import SerialLink

        with SerialLink(port, timeout=round(budget.left(), 1), source=port) as link:
            ready = link.hello()
        facts = ", ".join(f"{k} {ready[k]}" for k in ("board", "input_size", "output_size") if k in ready)
        checks.append(Check("firmware", True, f"ready ({facts})"))
    except BoardError as exc:
        checks.append(Check("firmware", False, f"no handshake: {_strip(str(exc), port)}"))
    finally:
        lease.release()


def serial_port(board: Board, checks: list[Check]) -> str | None:
    """The board's serial device, checked present and openable; None (and a failed check) otherwise."""
    if board.device and os.path.exists(board.device):
        port = board.device
    elif board.serial_number:
        from ..targets.serial_link import find_port

        try:
            port = find_port(board.serial_number)
        except BoardError as exc:
            missing = f"{board.device} is not present and " if board.device else ""
            checks.append(Check("port", False, missing + str(exc)))
            return None
    else:
        checks.append(Check("port", False, f"{board.device} is not present (unplugged? check the cable and "
                                           "the udev rule)"))
        return None
    if not os.access(port, os.R_OK | os.W_OK):
        checks.append(Check("port", False, f"{port}: no permission to open it (add the runner user to the "
                                           "dialout group or install runners/udev rules)"))
        return None
    checks.append(Check("port", True, port))
    return port


# ---------------------------------------------------------------------- fpga

VENDOR_TOOLS = ("vivado", "quartus_sh", "yosys")


def check_fpga(board: Board, budget: _Budget, checks: list[Check], folder: LeaseFolder) -> None:
    if board.simulator == "ghdl":
        tools_present(checks, [("simulator", "ghdl", "apt-get install ghdl")], budget)
        return
    found = next((shutil.which(tool) for tool in VENDOR_TOOLS if shutil.which(tool)), None)
    checks.append(Check("toolchain", True, found) if found else
                  Check("toolchain", False, f"no vendor tool on PATH ({', '.join(VENDOR_TOOLS)}); "
                                            "source the vendor settings script in the runner's environment"))
    if board.device:
        serial_port(board, checks)


def tools_present(checks: list[Check], tools: list[tuple[str, str, str]], budget: _Budget) -> None:
    for name, tool, install in tools:
        exe = shutil.which(tool)
        if exe is None:
            checks.append(Check(name, False, f"{tool} not found on PATH ({install})"))
        else:
            checks.append(Check(name, True, _first_line([exe, "--version"], budget.left())))


CHECKS = {"rpi-ssh": check_rpi, "pico-serial": check_pico, "fpga": check_fpga}


# ---------------------------------------------------------------------- the table

def check_board(board: Board, folder: LeaseFolder, timeout: float, row: Row) -> None:
    """Fill ``row`` with ``board``'s checks; any unexpected error becomes one failed check."""
    started = time.monotonic()
    try:
        CHECKS[board.kind](board, _Budget(timeout), row.checks, folder)
    except Exception as exc:  # noqa: BLE001 - one line in the table, never a traceback
        first = str(exc).splitlines()[0] if str(exc).strip() else ""
        row.checks.append(Check("check", False, f"{type(exc).__name__}: {first}"))
    row.seconds = time.monotonic() - started


def check_boards(boards: list[Board], lease_dir: Path | str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 record: bool = False) -> list[Row]:
    """One row per board, checked in parallel; a board silent past ``timeout`` s gets a failed check."""
    folder = LeaseFolder(lease_dir)
    rows = [Row(b.name, b.kind) for b in boards]
    threads = []
    for board, row in zip(boards, rows):
        # Daemon threads, not a ThreadPoolExecutor: its workers are joined at exit, so one hung
        # board would hold the command past its timeout.
        thread = threading.Thread(target=check_board, args=(board, folder, timeout, row), daemon=True,
                                  name=f"check {board.name}")
        thread.start()
        threads.append(thread)
    deadline = time.monotonic() + timeout + 0.5
    for board, row, thread in zip(boards, rows, threads):
        thread.join(max(deadline - time.monotonic(), 0))
        if thread.is_alive():
            done = ", ".join(c.name for c in row.checks) or "nothing"
            row.checks = list(row.checks) + [Check("answer", False, f"no answer within {timeout:g} s "
                                                                      f"(done: {done})")]
            row.seconds = timeout
    for board, row in zip(boards, rows):
        row.lease = folder.holder(board.name)
        if record:
            failed = [c for c in row.checks if c.ok is False]
            if failed:
                set_health(folder, board.name, False, f"boards check: {failed[0].name}: {failed[0].detail}")
            else:
                set_health(folder, board.name, True)
        row.health = read_health(folder, board.name)
    return rows


def summary(row: Row) -> str:
    failed = [c for c in row.checks if c.ok is False]
    if failed:
        return "; ".join(f"{c.name}: {c.detail}" for c in failed)
    return "; ".join(f"{c.name}: {c.detail}" for c in row.checks)


def format_table(rows: list[Row], seconds: float) -> str:
    lines = [["BOARD", "KIND", "STATUS", "LEASE", "HEALTH", "DETAILS"]]
    for row in rows:
        status = "ok" if row.ok else "UNHEALTHY"
        lease = describe(row.lease) if row.lease else "free"
        health = describe_health(row.health) if row.health else "ok"
        lines.append([row.board, row.kind, status, lease, health, summary(row)])
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    text = ["  ".join([*(cell.ljust(width) for cell, width in zip(line[:5], widths)), line[5]]).rstrip()
            for line in lines]
    bad = sum(not row.ok for row in rows)
    text.append(f"{len(rows)} board{'s' * (len(rows) != 1)}: {len(rows) - bad} ok, {bad} unhealthy "
                f"(checked in {seconds:.1f} s)")
    return "\n".join(text)


def run_check(inventory_path: Path | str, as_json: bool = False, timeout: float = DEFAULT_TIMEOUT,
              lease_dir: Path | str | None = None, record: bool = False) -> tuple[int, str]:
    """(exit code, text) of ``explorer boards check``: 0 when every board is healthy, else 1.
    A bad inventory raises ``UserError`` (the CLI prints its located line and exits 2)."""
    inventory = load_inventory(Path(inventory_path))
    started = time.monotonic()
    rows = check_boards(inventory.boards, lease_dir, timeout, record)
    seconds = time.monotonic() - started
    code = 0 if all(row.ok for row in rows) else 1
    if as_json:
        return code, json.dumps({"ok": code == 0, "seconds": round(seconds, 3),
                                 "boards": [row.to_dict() for row in rows]}, indent=2)
    return code, format_table(rows, seconds)


__all__ = ["Check", "Row", "check_boards", "format_table", "run_check"]

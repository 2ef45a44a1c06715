"""The simulated Pico 2: a firmware ELF (``mcu.build_mps2``) in ``qemu-system-arm -M mps2-an505``
with UART0 on a pty, driven by ``SerialLink`` exactly as a real Pico on USB CDC.

QEMU models no timing. It runs with ``-icount shift=8``: virtual time advances 256 ns per
executed instruction, so the firmware turns its timer into an exact instruction count (checked at
boot on a known loop). Results carry ``"instructions"``: simulated cost, not a time.
"""

from __future__ import annotations

import queue
import re
import resource
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from .mcu import ICOUNT_SHIFT
from .protocol import BoardError
from .serial_link import SerialLink

MACHINE = "mps2-an505"
PTY_LINE = re.compile(r"char device redirected to (/dev/pts/\d+)")


def _no_core_dumps() -> None:  # a firmware that locks the CPU up makes QEMU abort()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class QemuBoard:
    """``with QemuBoard(elf) as board: ready, results = board.run(x)``; QEMU is killed on exit."""

    def __init__(self, elf: Path, timeout: float = 30.0, boot_timeout: float = 10.0, qemu: str = "qemu-system-arm"):
        self.elf = Path(elf)
        self.timeout = timeout
        self.boot_timeout = boot_timeout
        self.qemu = qemu
        self.source = f"qemu {MACHINE} ({self.elf.name})"
        self.process: subprocess.Popen | None = None
        self.link: SerialLink | None = None
        self._stderr: list[str] = []
        self._threads: list[threading.Thread] = []

    def argv(self, exe: str) -> list[str]:
        return [exe, "-M", MACHINE, "-nographic", "-monitor", "none", "-serial", "pty",
                "-icount", f"shift={ICOUNT_SHIFT}", "-kernel", str(self.elf)]

    def start(self) -> SerialLink:
        exe = shutil.which(self.qemu)
        if exe is None:
            raise UserError(f"{self.qemu} not found on PATH", hint="apt-get install qemu-system-arm")
        if not self.elf.is_file():
            raise UserError(f"{self.elf}: no such firmware", hint="explorer build --target pico builds it")
        self.process = subprocess.Popen(self.argv(exe), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, errors="replace",
                                        preexec_fn=_no_core_dumps)
        found: queue.Queue[str | None] = queue.Queue()
        self._threads = [threading.Thread(target=self._watch_stdout, args=(found,), daemon=True),
                         threading.Thread(target=self._drain_stderr, daemon=True)]
        for thread in self._threads:
            thread.start()
        try:
            pty = found.get(timeout=self.boot_timeout)
        except queue.Empty:
            pty = None
        if pty is None:
            self.stop()
            raise BoardError(f"{self.source}: QEMU gave no serial pty within {self.boot_timeout:g} s"
                             + self._qemu_said())
        try:
            self.link = SerialLink(pty, timeout=self.timeout, source=self.source)
        except BoardError as exc:
            raise BoardError(f"{exc}{self._qemu_said()}") from None
        return self.link

    def _watch_stdout(self, found: queue.Queue) -> None:
        told = False
        for line in self.process.stdout:  # type: ignore[union-attr]
            match = PTY_LINE.search(line)
            if match and not told:
                found.put(match.group(1))
                told = True
        if not told:
            found.put(None)

    def _drain_stderr(self) -> None:
        for line in self.process.stderr:  # type: ignore[union-attr]
            if len(self._stderr) < 200:
                self._stderr.append(line.rstrip())

    def _qemu_said(self) -> str:
        """QEMU's exit status and first complaint, when it has died (e.g. a CPU lockup on a wrong
        ELF): the closed pty is often noticed a moment before the exit."""
        if self.process is None:
            return ""
        try:
            self.process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            return ""
        for thread in self._threads:
            thread.join(timeout=1)  # QEMU's last words
        said = next((line for line in self._stderr if line.strip()), "")
        code = self.process.returncode
        return f" (QEMU exited with status {code}" + (f": {said[:200]})" if said else ")")

    def run(self, x: np.ndarray) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(ready event, one result event per input); QEMU's own complaint joins any BoardError."""
        link = self.link or self.start()
        try:
            ready = link.ready or link.hello()
            return ready, link.run(x)
        except BoardError as exc:
            raise BoardError(f"{exc}{self._qemu_said()}") from None

    def stop(self) -> None:
        if self.link is not None:
            self.link.close()
            self.link = None
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait(timeout=10)
            for thread in self._threads:
                thread.join(timeout=2)  # they end at the pipes' EOF
            for pipe in (self.process.stdout, self.process.stderr):
                if pipe is not None:
                    pipe.close()

    def __enter__(self) -> QemuBoard:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_mps2(elf: Path, x: np.ndarray, timeout: float = 30.0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Boot ``elf`` in QEMU, run the inputs ``x`` through the serial protocol, stop QEMU."""
    with QemuBoard(elf, timeout=timeout) as board:
        return board.run(x)

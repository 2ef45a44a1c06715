"""The serial transport of the Pico boards: pyserial to USB CDC on a real Pico, or to the pty of
QEMU's UART for the simulated Pico 2 (``explorer.targets.qemu``). Same bytes either way.

Host -> board, ASCII lines ending in ``\\n``:

    HELLO        the board answers with its ready line (it never speaks first: USB CDC and a
                 pty drop whatever is written before the host opens the port)
    RUN <n>      the next n inputs are one run; the done line follows the n-th result
    I <base64>   one input: input_size float32 values, their little-endian bytes in base64
                 (``base64.b64encode(x.astype('<f4').tobytes())``): bit-exact inputs, and a frame
                 always ends at a newline, so a torn frame costs one error line, not the link.
                 Base64, not raw bytes, for that; not hex, because QEMU's UART model takes one
                 byte per main-loop turn (about 20 KB/s here), so every byte of a frame counts

Board -> host: the JSON lines of ``explorer.targets.protocol`` (ready, one result per input with
``output`` and the cost field, done, or error). On the simulator the cost is ``"instructions"``
(QEMU's ``-icount``: a count of executed instructions, not a time), on a real Pico
``"time_ns"``. ``firmware/main_mcu.c`` is the board side.

Flashing a real Pico: ``picotool load -x -f`` (``flash_picotool``) or copying the UF2 onto the
BOOTSEL drive (``flash_uf2_copy``, after ``reset_to_bootsel`` or a press of BOOTSEL); both fail
with one clear line when the tool or drive is missing. Only those error paths are tested here.
"""

from __future__ import annotations

import base64
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from .protocol import BoardError, EventStream

READY_LINE_MAX = 4096  # before the ready line: boot chatter, never more per line
CHUNK = 4096
BOOTSEL_LABELS = ("RPI-RP2", "RP2350")  # the mass-storage drives of the RP2040 and RP2350 boot ROMs
BINARY = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\xff]")  # never in the protocol's text


class _Lines:
    """Lines of a serial port, read by a thread; each line capped at ``limit`` bytes so a babbling
    link without newlines still yields (garbage) lines instead of filling memory."""

    def __init__(self, port: Any, source: str):
        self.port = port
        self.source = source
        self.limit = READY_LINE_MAX
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, daemon=True, name=f"serial {source}")
        self._thread.start()

    def _pump(self) -> None:
        pending = b""
        try:
            while not self._stop.is_set():
                chunk = self.port.read(min(max(1, self.port.in_waiting), CHUNK))
                if not chunk:
                    continue  # the read timed out: look at the stop flag again
                pending += chunk
                while True:
                    cut = pending.find(b"\n")
                    if cut < 0 and len(pending) < self.limit:
                        break
                    cut = cut + 1 if 0 <= cut < self.limit else self.limit
                    self._lines.put(pending[:cut])
                    pending = pending[cut:]
        except Exception:  # noqa: BLE001 - a closed or vanished port (SerialException, OSError, TypeError): the end
            pass
        finally:
            self._lines.put(None)

    def readline(self, timeout: float) -> str | None:
        try:
            raw = self._lines.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            raise TimeoutError from None
        if raw is None:
            return None
        if BINARY.search(raw):
            raise BoardError(f"{self.source}: binary garbage on the serial line: {raw[:40]!r} "
                             "(wrong device, wrong baud rate, or the board crashed)")
        return raw.decode("utf-8", "replace")

    def stop(self) -> None:
        self._stop.set()


class SerialLink:
    """One board on a serial port: ``hello()`` then ``run(x)``; every wait has ``timeout``."""

    def __init__(self, port: str, timeout: float = 30.0, baudrate: int = 115200, source: str | None = None):
        import serial

        self.port_name = port
        self.source = source or port
        self.timeout = timeout
        try:
            self.serial = serial.Serial(port, baudrate=baudrate, timeout=0.05, write_timeout=timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise BoardError(f"{self.source}: cannot open serial port {port}: {exc}") from None
        self._lines = _Lines(self.serial, self.source)
        self.stream = EventStream(self._lines.readline, self.source, timeout)
        self.ready: dict[str, Any] | None = None

    def __enter__(self) -> SerialLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._lines.stop()
        try:
            self.serial.close()
        except Exception:  # noqa: BLE001 - closing a port that vanished
            pass

    def _write(self, data: bytes) -> None:
        import serial

        try:  # no flush(): tcdrain has no timeout, and a hung USB board would block it forever
            self.serial.write(data)
        except (serial.SerialException, OSError) as exc:
            raise BoardError(f"{self.source}: writing to the serial port failed: {exc}") from None

    def hello(self) -> dict[str, Any]:
        """Ask for the ready line (input/output sizes, board, cost unit) and return it."""
        self._write(b"\nHELLO\n")  # the newline first ends any half line a previous session left
        ready = self.stream.expect_ready()
        for key in ("input_size", "output_size"):
            if not isinstance(ready.get(key), int) or ready[key] <= 0:
                raise BoardError(f"{self.source}: ready line without a positive {key}: {ready}")
        self.ready = ready
        self._lines.limit = 256 + 32 * ready["output_size"]
        return ready

    def run(self, x: np.ndarray) -> list[dict[str, Any]]:
        """Send the inputs ``x`` [N, ...] and return the N result events (``output`` checked to
        have ``output_size`` values). Inputs are written by a thread while results are read, so
        neither side's buffers limit how many inputs one run has."""
        ready = self.ready or self.hello()
        flat = np.ascontiguousarray(np.asarray(x, dtype="<f4").reshape(len(x), -1))
        if flat.shape[1] != ready["input_size"]:
            raise BoardError(f"{self.source}: the board's model takes {ready['input_size']} inputs, the samples "
                             f"have {flat.shape[1]} (flash the firmware of this artifact)")
        failure: list[BaseException] = []

        def send() -> None:
            try:
                for frame in encode_run(flat):
                    self._write(frame)
            except BaseException as exc:  # noqa: BLE001 - reported by the reading side
                failure.append(exc)

        writer = threading.Thread(target=send, daemon=True, name=f"serial writer {self.source}")
        writer.start()
        try:
            results = self.stream.results(len(flat))
        except BoardError as exc:
            if failure:
                raise BoardError(f"{exc}; sending inputs failed too: {failure[0]}") from None
            raise
        writer.join(self.timeout)
        for event in results:
            if len(event["output"]) != ready["output_size"]:
                raise BoardError(f"{self.source}: result {event['index']} has {len(event['output'])} outputs, "
                                 f"expected {ready['output_size']}")
        return results


def encode_run(x: np.ndarray) -> list[bytes]:
    """The frames of one run of inputs ``x`` [N, ...]: ``RUN N`` then one ``I <base64>`` line each."""
    flat = np.ascontiguousarray(np.asarray(x, dtype="<f4").reshape(len(x), -1))
    return [f"RUN {len(flat)}\n".encode(), *(b"I " + base64.b64encode(row.tobytes()) + b"\n" for row in flat)]


def find_port(serial_number: str) -> str:
    """The device path of the USB serial port with ``serial_number`` (a Pico's unique board id)."""
    from serial.tools import list_ports

    ports = list(list_ports.comports())
    for port in ports:
        if port.serial_number == serial_number:
            return port.device
    seen = ", ".join(f"{p.device} ({p.serial_number})" for p in ports if p.serial_number) or "none"
    raise BoardError(f"no serial port with USB serial number {serial_number!r} (USB serial ports: {seen})")


def open_link(device: str | None = None, serial_number: str | None = None, timeout: float = 30.0) -> SerialLink:
    """A ``SerialLink`` to a real board, by device path or by USB serial number."""
    if device is None and serial_number is None:
        raise UserError("a serial board needs 'device' or 'serial_number'", hint="set one in boards.yaml")
    port = device or find_port(serial_number)  # type: ignore[arg-type]
    return SerialLink(port, timeout=timeout, source=f"serial {serial_number or device}")


def run_board(x: np.ndarray, device: str | None = None, serial_number: str | None = None,
              timeout: float = 30.0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(ready event, one result event per input) of a real board running the protocol firmware."""
    with open_link(device, serial_number, timeout) as link:
        return link.hello(), link.run(x)


def wait_for_port(serial_number: str, timeout: float = 10.0) -> str:
    """Wait for a freshly flashed board's USB serial port to come back."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return find_port(serial_number)
        except BoardError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def reset_to_bootsel(device: str) -> None:
    """Reboot a running pico-sdk firmware into BOOTSEL (the UF2 drive) the way the Arduino tools
    do: open its USB serial port at 1200 baud (pico-sdk's PICO_STDIO_USB_ENABLE_RESET_VIA_BAUD_RATE,
    on by default). Untested here: only a real board reacts."""
    import serial

    try:
        serial.Serial(device, baudrate=1200).close()
    except (serial.SerialException, OSError) as exc:
        raise BoardError(f"cannot open {device} to reset the board into BOOTSEL: {exc}") from None


def flash_picotool(image: Path, serial_number: str | None = None, picotool: str = "picotool",
                   timeout: float = 120.0) -> None:
    """Load ``image`` (.uf2/.elf/.bin) with ``picotool load -x -f``: -f reboots a running
    pico-sdk USB-stdio firmware into BOOTSEL first, -x starts the new image."""
    exe = shutil.which(picotool)
    if exe is None:
        raise UserError(f"{picotool} not found on PATH",
                        hint="install picotool (it is in the pico toolchain image), or flash by UF2 copy")
    image = _image(image, (".uf2", ".elf", ".bin"))
    argv = [exe, "load", "-x", str(image), "-f", *(["--ser", serial_number] if serial_number else [])]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BoardError(f"picotool load did not finish within {timeout:g} s") from None
    if done.returncode != 0:
        lines = (done.stderr + done.stdout).strip().splitlines()
        raise BoardError(f"picotool load failed: {lines[-1] if lines else f'exit status {done.returncode}'}")


def bootsel_drives(mounts: Path = Path("/proc/mounts")) -> list[Path]:
    """Mounted BOOTSEL drives: mount points holding the boot ROM's INFO_UF2.TXT."""
    found = []
    try:
        table = mounts.read_text()
    except OSError:
        return []
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        point = Path(fields[1].replace("\\040", " "))
        if (point / "INFO_UF2.TXT").is_file():
            found.append(point)
    return found


def flash_uf2_copy(uf2: Path, mount: Path | None = None, mounts: Path = Path("/proc/mounts")) -> Path:
    """Copy ``uf2`` onto a Pico's BOOTSEL drive (``mount``, or the one mounted drive found);
    the board reboots into the new firmware when the copy completes."""
    uf2 = _image(uf2, (".uf2",))
    if mount is None:
        drives = bootsel_drives(mounts)
        if not drives:
            raise BoardError(f"no Pico BOOTSEL drive ({' or '.join(BOOTSEL_LABELS)}) is mounted: hold BOOTSEL "
                             "while plugging the board in, mount the drive, or use picotool")
        if len(drives) > 1:
            raise BoardError(f"several BOOTSEL drives are mounted ({', '.join(map(str, drives))}): name one")
        mount = drives[0]
    mount = Path(mount)
    if not (mount / "INFO_UF2.TXT").is_file():
        raise BoardError(f"{mount} is not a Pico BOOTSEL drive (no INFO_UF2.TXT)")
    target = mount / uf2.name
    with open(uf2, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
        dst.flush()
        try:
            os.fsync(dst.fileno())
        except OSError:  # the board reboots as soon as it has the last block: the drive is gone
            pass
    return target


def _image(path: Path, suffixes: tuple[str, ...]) -> Path:
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise UserError(f"{path}: cannot flash a {path.suffix or 'suffix-less'} file", hint=f"use {'/'.join(suffixes)}")
    if not path.is_file():
        raise UserError(f"{path}: no such firmware image", hint="explorer build --target pico builds it")
    return path

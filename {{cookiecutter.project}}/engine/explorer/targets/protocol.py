"""The one results protocol of every board program: JSON lines on its output.

    {"event": "ready", "input_size": N, "output_size": M, ...}     once, when it can take inputs
    {"event": "result", "index": i, "output": [...], "time_ns": t}  one per input ("instructions"
                                                                    instead of time on a simulator)
    {"event": "done", "count": n}                                   after the last input
    {"event": "error", "message": "..."}                            the program gave up

The host reads these the same way from a local process, an SSH channel, a serial port or a
simulator. Boot chatter before ``ready`` is tolerated up to a limit; after it every line must be
JSON. Every wait has a deadline, so a silent or babbling board ends in one clear error.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from typing import IO, Any

MAX_CHATTER_LINES = 50
MAX_LINE = 1 << 20


class BoardError(Exception):
    """A fault of the board or its link (no answer, garbage, a crash): fails one measurement."""


class LineReader:
    """Lines of a blocking stream, read by a thread, handed out with a timeout."""

    def __init__(self, stream: IO[bytes] | IO[str], source: str):
        self.source = source
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: Any) -> None:
        try:
            for raw in iter(lambda: stream.readline(MAX_LINE), b"" if "b" in getattr(stream, "mode", "b") else ""):
                if not raw:
                    break
                self._lines.put(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)
        except (OSError, ValueError):  # the stream closed under us: same as its end
            pass
        finally:
            self._lines.put(None)

    def readline(self, timeout: float) -> str | None:
        """The next line; None at the end of the stream; ``TimeoutError`` when none came in time."""
        try:
            return self._lines.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            raise TimeoutError from None


class EventStream:
    """Parse board events from ``readline(timeout) -> str | None`` with one deadline per wait."""

    def __init__(self, readline: Callable[[float], str | None], source: str, timeout: float):
        self.readline = readline
        self.source = source
        self.timeout = timeout
        self.ready: dict[str, Any] | None = None
        self.log: list[str] = []

    def _line(self, deadline: float, waiting_for: str) -> str:
        try:
            line = self.readline(deadline - time.monotonic())
        except TimeoutError:
            raise BoardError(f"{self.source}: no {waiting_for} within {self.timeout:g} s "
                             "(board silent or hung)") from None
        if line is None:
            tail = f"; last output: {self.log[-1]!r}" if self.log else ""
            raise BoardError(f"{self.source}: connection closed while waiting for {waiting_for}{tail}")
        return line.strip()

    def next_event(self, waiting_for: str = "an event") -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        chatter = 0
        while True:
            line = self._line(deadline, waiting_for)
            if not line:
                continue
            self.log = (self.log + [line[:200]])[-5:]
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = None
            if isinstance(event, dict) and isinstance(event.get("event"), str):
                if event["event"] == "error":
                    raise BoardError(f"{self.source}: board reported an error: {event.get('message', '?')}")
                return event
            chatter += 1
            if self.ready is not None or chatter > MAX_CHATTER_LINES:
                raise BoardError(f"{self.source}: garbage instead of protocol output: {line[:80]!r}")

    def expect_ready(self) -> dict[str, Any]:
        event = self.next_event("ready line")
        if event["event"] != "ready":
            raise BoardError(f"{self.source}: expected a ready line, got {event['event']!r}")
        self.ready = event
        return event

    def results(self, count: int) -> list[dict[str, Any]]:
        """``count`` result events in order, then the done line."""
        found = []
        while True:
            event = self.next_event(f"result {len(found)} of {count}")
            if event["event"] == "result":
                if event.get("index") != len(found) or not isinstance(event.get("output"), list):
                    raise BoardError(f"{self.source}: malformed result line (index {event.get('index')!r})")
                found.append(event)
            elif event["event"] == "done":
                if len(found) != count:
                    raise BoardError(f"{self.source}: board stopped after {len(found)} of {count} results")
                return found
            else:
                raise BoardError(f"{self.source}: unexpected event {event['event']!r}")

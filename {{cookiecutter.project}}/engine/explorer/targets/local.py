"""Run a board program as a local process (the host target, simulators, a binary under
qemu-user) and read its JSON-lines results with a deadline."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from .protocol import BoardError, EventStream, LineReader


def run_program(argv: list[str], count: int, timeout: float, cwd: Path | None = None,
                source: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(ready event, ``count`` result events) of ``argv``; a crash, silence or garbage is a ``BoardError``."""
    source = source or Path(argv[0]).name
    try:
        process = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
    except OSError as exc:
        raise BoardError(f"{source}: cannot start {argv[0]}: {exc.strerror or exc}") from None
    try:
        stream = EventStream(LineReader(process.stdout, source).readline, source, timeout)
        ready = stream.expect_ready()
        results = stream.results(count)
        process.wait(timeout=timeout)
        return ready, results
    except BoardError as exc:
        process.kill()
        _, stderr = process.communicate()
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] if stderr else []
        raise BoardError(f"{exc}" + (f" (stderr: {tail[0][:200]})" if tail else "")) from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

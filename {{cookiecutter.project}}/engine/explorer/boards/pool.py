"""A pool of boards: each job gets a free, healthy board of the right kind, held by its lease.

    pool = BoardPool(inventory.boards, max_faults=3)
    with pool.board(target="rpi", labels=["rpi5"], wait=600) as board:
        try:
            metrics = bench(artifact, board, options)
            pool.report_ok(board)
        except BoardError as exc:
            pool.report_fault(board, str(exc))

Health is shared like the leases: ``<board>.health.json`` in the lease folder counts consecutive
faults; after ``max_faults`` the board is unhealthy and every pool (any process, and
``explorer boards check``) leaves it out until ``mark_healthy`` (a repaired board, or a passing
``explorer boards check --record``). Concurrent callers get different boards, so throughput grows
with the number of boards.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..targets.protocol import BoardError
from .inventory import Board, Inventory
from .lease import DEFAULT_TTL, POLL, Lease, LeaseFolder, default_owner, describe

DEFAULT_MAX_FAULTS = 3
HEALTH_REFRESH = 0.5  # seconds between re-reading health files while waiting for a board


class NoBoardError(BoardError):
    """No healthy board (left) serves the request: the study stops using hardware or falls back."""


class PoolBusy(BoardError):
    """Every matching healthy board stayed leased for the whole wait."""


def read_health(folder: LeaseFolder, name: str) -> dict[str, Any]:
    """A board's persisted health: {faults (consecutive), healthy, reason, last_fault, updated}."""
    found = folder.read(name, "health") or {}
    return {"board": name, "faults": int(found.get("faults", 0)), "healthy": bool(found.get("healthy", True)),
            "reason": found.get("reason"), "last_fault": found.get("last_fault"), "updated": found.get("updated")}


def describe_health(health: dict[str, Any]) -> str:
    if not health["healthy"]:
        return f"unhealthy: {health.get('reason') or 'marked unhealthy'}"
    if health["faults"]:
        return f"ok ({health['faults']} consecutive fault{'s' * (health['faults'] > 1)})"
    return "ok"


def set_health(folder: LeaseFolder, name: str, healthy: bool, reason: str | None = None) -> dict[str, Any]:
    """Mark a board (un)healthy by hand or from a health check; a healthy board restarts at 0 faults."""
    with folder.lock(name):
        health = read_health(folder, name)
        health.update(healthy=healthy, reason=None if healthy else reason, updated=time.time())
        if healthy:
            health["faults"] = 0
        folder.write(name, health, "health")
        return health


class BoardPool:
    """Boards of an inventory shared by threads, processes and runners through one lease folder."""

    def __init__(self, boards: Iterable[Board] | Inventory, lease_dir: LeaseFolder | Path | str | None = None,
                 ttl: float = DEFAULT_TTL, max_faults: int = DEFAULT_MAX_FAULTS, owner: str | None = None,
                 reclaim_dead: bool = True, poll: float = POLL):
        self.boards: list[Board] = list(boards.boards if isinstance(boards, Inventory) else boards)
        if max_faults < 1:
            raise ValueError("max_faults must be at least 1")
        self.folder = lease_dir if isinstance(lease_dir, LeaseFolder) else LeaseFolder(lease_dir)
        self.ttl = ttl
        self.max_faults = max_faults
        self.owner = owner or default_owner()
        self.reclaim_dead = reclaim_dead
        self.poll = poll
        self._random = random.Random()

    # ------------------------------------------------------------------ selection

    def matching(self, target: str | None = None, labels: Sequence[str] = ()) -> list[Board]:
        """Boards whose kind serves ``target`` and whose labels include ``labels`` (health aside)."""
        wanted = set(labels)
        return [b for b in self.boards if (target is None or b.target == target) and wanted <= set(b.labels)]

    def health(self, board: Board | str) -> dict[str, Any]:
        return read_health(self.folder, _name(board))

    def healthy(self, target: str | None = None, labels: Sequence[str] = ()) -> list[Board]:
        """Matching boards not marked unhealthy (busy ones included)."""
        return [b for b in self.matching(target, labels) if self.health(b)["healthy"]]

    def _what(self, target: str | None, labels: Sequence[str]) -> str:
        what = f"target {target}" if target else "any target"
        return what + (f" with labels {', '.join(labels)}" if labels else "")

    def _usable(self, target: str | None, labels: Sequence[str]) -> list[Board]:
        candidates = self.matching(target, labels)
        if not candidates:
            names = ", ".join(f"{b.name} ({b.kind}; labels {', '.join(b.labels) or 'none'})" for b in self.boards)
            raise NoBoardError(f"no board in the pool serves {self._what(target, labels)} (boards: {names or 'none'})")
        usable = [b for b in candidates if self.health(b)["healthy"]]
        if not usable:
            why = "; ".join(f"{b.name}: {describe_health(self.health(b))}" for b in candidates)
            raise NoBoardError(f"no healthy board left for {self._what(target, labels)} ({why})")
        return usable

    def acquire(self, target: str | None = None, labels: Sequence[str] = (),
                wait: float | None = None) -> tuple[Board, Lease]:
        """A free healthy matching board and its held lease (release it when done); polls up to
        ``wait`` seconds (None: as long as a healthy board exists). ``NoBoardError`` when none is
        healthy (at once, or when the last one fails while waiting), ``PoolBusy`` after ``wait``."""
        deadline = None if wait is None else time.monotonic() + wait
        usable, checked = self._usable(target, labels), time.monotonic()
        while True:
            order = list(usable)
            self._random.shuffle(order)  # spread jobs over the boards instead of wearing out the first
            for board in order:
                lease = Lease(board.name, self.owner, self.ttl, 0.0, self.folder, self.reclaim_dead, self.poll)
                if lease.try_acquire():
                    if self.health(board)["healthy"]:  # it may have failed in another process meanwhile
                        return board, lease
                    lease.release()
            if deadline is not None and time.monotonic() >= deadline:
                held = "; ".join(f"{b.name}: {describe(self.folder.holder(b.name))}" for b in usable)
                raise PoolBusy(f"every board for {self._what(target, labels)} stayed busy for {wait:g} s ({held})")
            time.sleep(self.poll * (0.5 + self._random.random()))
            if time.monotonic() - checked >= HEALTH_REFRESH:
                usable, checked = self._usable(target, labels), time.monotonic()

    @contextlib.contextmanager
    def board(self, target: str | None = None, labels: Sequence[str] = (),
              wait: float | None = None) -> Iterator[Board]:
        """``with pool.board(target="rpi") as board:`` a free healthy board, leased until the block ends."""
        chosen, lease = self.acquire(target, labels, wait)
        with lease:
            yield chosen

    # ------------------------------------------------------------------ health

    def report_fault(self, board: Board | str, reason: str) -> dict[str, Any]:
        """Count one more consecutive fault; at ``max_faults`` the board becomes unhealthy."""
        name = _name(board)
        with self.folder.lock(name):
            health = read_health(self.folder, name)
            health["faults"] += 1
            health["last_fault"] = reason
            if health["healthy"] and health["faults"] >= self.max_faults:
                health["healthy"] = False
                health["reason"] = f"{health['faults']} consecutive faults, last: {reason}"
            health["updated"] = time.time()
            self.folder.write(name, health, "health")
            return health

    def report_ok(self, board: Board | str) -> dict[str, Any]:
        """A measurement worked: the consecutive fault count restarts (an unhealthy mark stays)."""
        name = _name(board)
        with self.folder.lock(name):
            health = read_health(self.folder, name)
            if health["faults"]:
                health.update(faults=0, updated=time.time())
                self.folder.write(name, health, "health")
            return health

    def mark_healthy(self, board: Board | str) -> dict[str, Any]:
        return set_health(self.folder, _name(board), True)

    def mark_unhealthy(self, board: Board | str, reason: str) -> dict[str, Any]:
        return set_health(self.folder, _name(board), False, reason)


def _name(board: Board | str) -> str:
    return board if isinstance(board, str) else board.name


__all__ = ["BoardPool", "NoBoardError", "PoolBusy", "describe_health", "read_health", "set_health"]

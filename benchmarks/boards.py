"""Board pool throughput: the same measurement-bound jobs on 1, 2, ... loopback sshd "Pis".

Run: .venv/bin/python benchmarks/boards.py [--boards 2] [--jobs 8] [--seconds 0.5] [--repeats 3]
                                           [--mode processes|threads]

Each job takes a board from ``explorer.boards.pool.BoardPool`` (lease lock), connects over SSH
(verified host key, key auth) and keeps the board busy with ``sleep SECONDS``: the board, not the
host, is the bottleneck, as when a Pi measures a model. ``--boards`` workers (separate
processes sharing only the lease folder, or threads) run the jobs for every pool size from 1 to
``--boards``.
Goal: at least 1.8x the throughput of one board with two. Pool sizes alternate within each of
``--repeats`` rounds and the median time counts, so a shared machine's load drift hits all sizes
alike. The loopback "Pis" share this host's CPU for their SSH work (real boards bring their own),
so a busy host lowers the ratio. The table also checks that no board ever ran two jobs at once.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1] / "{{cookiecutter.project}}" / "engine"
sys.path.insert(0, str(ENGINE))

from explorer.boards import Board  # noqa: E402
from explorer.boards.pool import BoardPool  # noqa: E402
from explorer.targets.ssh import SshBoard  # noqa: E402

GOAL = 1.8  # throughput of two boards over one

_POOLS: dict[tuple, BoardPool] = {}


def job(boards: list[dict], lease_dir: str, seconds: float) -> tuple[str, float, float]:
    """One measurement-bound job; the pool is made once per worker process."""
    key = (tuple(b["name"] for b in boards), lease_dir)
    if key not in _POOLS:
        _POOLS[key] = BoardPool([Board(**b) for b in boards], lease_dir, ttl=10)
    with _POOLS[key].board(target="rpi", wait=600) as board:
        start = time.time()
        with SshBoard(board) as ssh:
            ssh.check_output(f"sleep {seconds}", timeout=seconds + 30)
        return board.name, start, time.time()


def warm(_: int) -> None:
    """Let a worker process import everything before the clock starts."""


def run(executor: Executor, boards: list[dict], lease_dir: str, jobs: int, seconds: float) -> tuple[float, list]:
    started = time.monotonic()
    log = [f.result() for f in [executor.submit(job, boards, lease_dir, seconds) for _ in range(jobs)]]
    return time.monotonic() - started, log


def shared(log: list) -> int:
    """Jobs that started on a board before the previous job on it had ended (must be 0)."""
    bad = 0
    for name in {entry[0] for entry in log}:
        ordered = sorted((s, e) for board, s, e in log if board == name)
        bad += sum(b[0] < a[1] for a, b in zip(ordered, ordered[1:]))
    return bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", type=int, default=2, help="Largest pool (and number of workers).")
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=0.5, help="How long each job keeps its board busy.")
    parser.add_argument("--repeats", type=int, default=3, help="Rounds over all pool sizes; the median counts.")
    parser.add_argument("--mode", choices=("threads", "processes"), default="processes",
                        help="Workers as separate processes (like runners; default) or threads of one process.")
    args = parser.parse_args()

    from tests.services_ssh import start_sshd

    root = Path(tempfile.mkdtemp(prefix="explorer-bench-boards-"))
    servers = [start_sshd(root / f"pi{i}") for i in range(args.boards)]
    boards = [s.board(f"pi-{i}").model_dump() for i, s in enumerate(servers)]
    if args.mode == "threads":
        executor: Executor = ThreadPoolExecutor(args.boards)
    else:
        executor = ProcessPoolExecutor(args.boards, mp_context=multiprocessing.get_context("spawn"))
        list(executor.map(warm, range(args.boards * 4)))
    times: dict[int, list[float]] = {count: [] for count in range(1, args.boards + 1)}
    logs: dict[int, list] = {count: [] for count in times}
    try:
        with executor:
            for _ in range(args.repeats):
                for count in times:
                    seconds, log = run(executor, boards[:count], str(root / f"leases{count}"), args.jobs,
                                       args.seconds)
                    times[count].append(seconds)
                    logs[count].append(log)
    finally:
        for server in servers:
            server.stop()
    rows = [(count, statistics.median(times[count]), [e for log in logs[count] for e in log]) for count in times]
    base = rows[0][1]
    print(f"{args.jobs} jobs of `sleep {args.seconds:g}` over SSH, {args.boards} workers ({args.mode}), "
          f"median of {args.repeats}")
    print(f"{'jobs':>5} {'boards':>6} {'seconds':>8} {'jobs/s':>7} {'throughput ratio':>17} {'shared':>6}")
    for count, seconds, log in rows:
        print(f"{args.jobs:>5} {count:>6} {seconds:>8.2f} {args.jobs / seconds:>7.2f} {base / seconds:>16.2f}x "
              f"{shared(log):>6}")
    ratio = base / rows[1][1] if len(rows) > 1 else None
    if ratio is not None:
        print(f"two boards vs one: {ratio:.2f}x (goal {GOAL}x): {'met' if ratio >= GOAL else 'NOT met'}")
    # The goal is reported, not enforced (a loaded machine moves the ratio); two jobs on one board
    # at once is a lease bug and fails the run.
    return 0 if all(shared(log) == 0 for _, _, log in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

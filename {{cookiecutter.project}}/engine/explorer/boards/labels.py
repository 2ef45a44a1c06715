"""Runner labels derived from the board inventory: what a hardware job's ``runs-on:`` can ask for.

``runners/register.sh`` registers a self-hosted runner with these labels, and the runner service
registers again with them before every job (ephemeral runners), leaving out boards the health
timer took out of service. Run as ``python -m explorer.boards.labels boards.yaml``.

A board contributes its kind (``pico-serial``), the target it serves (``pico``) and its own
``labels``. GitHub adds ``self-hosted``, the OS (``Linux``) and the architecture (``ARM64``/``X64``)
by itself, so they are printed only with ``--all``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from ..errors import UserError
from .inventory import Inventory, load_inventory

# GitHub's own labels for `uname -m`; 32-bit machines have none (GitHub dropped ARM32 runners).
ARCH_LABELS = {"x86_64": "X64", "amd64": "X64", "aarch64": "ARM64", "arm64": "ARM64"}
DEFAULT_LABELS = ("self-hosted", "Linux")
# GitHub's own labels: config.sh adds them, so a board's copy is dropped rather than doubled.
RESERVED = {"self-hosted", "linux", "x64", "arm64", "arm"}
# One label of the comma-separated --labels list of config.sh: no comma, no space, not empty.
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")


def board_labels(inventory: Inventory, exclude: Iterable[str] = ()) -> list[str]:
    """The custom labels the boards bring (kind, target, own labels), first occurrence first.

    Labels are case-insensitive on GitHub, so ``Pico`` and ``pico`` count once; GitHub's own
    labels are left to config.sh."""
    skipped = set(exclude)
    seen: dict[str, str] = {}
    for board in inventory.boards:
        if board.name in skipped:
            continue
        for name in (board.kind, board.target, *board.labels):
            if not LABEL.fullmatch(name):
                raise UserError(
                    f"board {board.name!r}: label {name!r} cannot be a runner label",
                    hint="use 1-100 of A-Z a-z 0-9 . _ + -, starting with a letter or digit",
                )
            if name.lower() not in RESERVED:
                seen.setdefault(name.lower(), name)
    return list(seen.values())


def runner_labels(inventory: Inventory, machine: str, exclude: Iterable[str] = ()) -> list[str]:
    """Every label the runner ends up with: GitHub's defaults for ``machine``, then the boards'."""
    arch = ARCH_LABELS.get(machine.lower())
    if arch is None:
        raise UserError(
            f"machine {machine!r} has no GitHub runner label",
            hint="self-hosted runners run on 64-bit x86_64 or aarch64 (GitHub no longer supports ARM32)",
        )
    return [*DEFAULT_LABELS, arch, *board_labels(inventory, exclude)]


def read_names(path: Path) -> list[str]:
    """Board names, one per line (``#`` comments and blank lines ignored); a missing file is empty."""
    if not path.is_file():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m explorer.boards.labels",
        description="Print the runner labels the inventory's boards bring, comma-separated (config.sh --labels).",
    )
    parser.add_argument("inventory", type=Path, help="boards.yaml")
    parser.add_argument("--exclude", action="append", default=[], metavar="BOARD", help="leave a board out")
    parser.add_argument("--exclude-file", type=Path, metavar="FILE",
                        help="leave out the boards named in FILE, one per line (the out-of-service list)")
    parser.add_argument("--all", action="store_true", help="include GitHub's default labels for --machine")
    parser.add_argument("--machine", default=None, help="`uname -m` for --all (default: this machine)")
    args = parser.parse_args(argv)
    try:
        inventory = load_inventory(args.inventory)
        exclude = [*args.exclude, *(read_names(args.exclude_file) if args.exclude_file else [])]
        if args.all:
            import platform

            labels = runner_labels(inventory, args.machine or platform.machine(), exclude)
        else:
            labels = board_labels(inventory, exclude)
    except UserError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return 2
    print(",".join(labels))
    return 0


if __name__ == "__main__":
    sys.exit(main())
